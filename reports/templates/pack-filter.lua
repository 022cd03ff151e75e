-- impactkit evidence pack: pandoc fallback for the Quarto features the pack uses.
--   fig-alt="..." on an image -> the image's alt text (HTML alt attribute; Typst image alt:,
--     which a tagged PDF carries for screen readers), as Quarto does natively;
--   ::: {.callout-note} -> a shaded box in Typst (HTML styles it with pack.css).

local function typst_string(text)
  return '"' .. text:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"'
end

function Image(img)
  local alt = img.attributes['fig-alt']
  if alt then
    img.attributes['fig-alt'] = nil
    if FORMAT:match('typst') then
      local width = img.attributes['width']
      local args = typst_string(img.src)
      if width and width:match('^[%d%.]+%%$') then
        args = args .. ', width: ' .. width
      end
      args = args .. ', alt: ' .. typst_string(alt)
      return pandoc.RawInline('typst', '#box(image(' .. args .. '))')
    end
    img.caption = pandoc.Inlines({pandoc.Str(alt)})
  end
  return img
end

function Div(div)
  if FORMAT:match('typst') and div.classes:includes('callout-note') then
    local out = pandoc.List({pandoc.RawBlock('typst',
      '#block(fill: rgb("#f3f6fa"), stroke: (left: 3pt + rgb("#c8553d")), inset: 9pt, radius: 2pt, width: 100%)[')})
    out:extend(div.content)
    out:insert(pandoc.RawBlock('typst', ']'))
    return out
  end
end
