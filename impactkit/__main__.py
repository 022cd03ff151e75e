from impactkit.cli import main

main()
