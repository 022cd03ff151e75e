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

-- Typst: let Typst size table columns to their content (columns: auto) instead of the
-- relative widths pandoc derives from a pipe table's dashes, so that narrow numeric
-- columns keep their headers whole ("Estimate", "p-value") and text columns wrap.
-- Tables holding code (the provenance digests) keep the widths the .qmd sets.
local function has_code(tbl)
  local found = false
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      for _, cell in ipairs(row.cells) do
        pandoc.walk_block(pandoc.Div(cell.contents), {Code = function() found = true end})
      end
    end
  end
  return found
end

function Table(tbl)
  if FORMAT:match('typst') and not has_code(tbl) then
    for i, spec in ipairs(tbl.colspecs) do
      tbl.colspecs[i] = {spec[1], pandoc.ColWidthDefault}
    end
    return tbl
  end
end

-- Typst: the page margins of the front matter (format: typst: margin: {x, y}) become the
-- `margin` template variable, as Quarto passes them; pandoc alone would keep its default.
function Meta(meta)
  if FORMAT:match('typst') and meta.margin == nil then
    local formats = meta.format
    local typst = formats and formats.typst
    if typst and typst.margin then
      meta.margin = typst.margin
      return meta
    end
  end
end

-- Policy brief (and report) blocks and labels in Typst: the message, the recommendation,
-- the honesty note and the inline honesty labels ([simulated data] ...). HTML styles the
-- same classes with brief.css / pack.css.
local BLOCKS = {
  message = '#block(width: 100%, above: 0.5em, below: 0.7em)[#set text(size: 1.3em, weight: "bold", fill: rgb("#1f3b57"))\n#set par(justify: false)\n#set text(hyphenate: false)\n',
  recommendation = '#block(fill: rgb("#eef3f8"), stroke: (left: 4pt + rgb("#1f3b57")), inset: 8pt, width: 100%, above: 0.8em)[',
  honesty = '#block(fill: rgb("#fff4e5"), stroke: 0.6pt + rgb("#8a5a00"), inset: 5pt, width: 100%)[#set text(size: 0.9em, fill: rgb("#5c3b00"))\n',
}

local function brief_block(div)
  for name, opening in pairs(BLOCKS) do
    if div.classes:includes(name) then
      local out = pandoc.List({pandoc.RawBlock('typst', opening)})
      out:extend(div.content)
      out:insert(pandoc.RawBlock('typst', ']'))
      return out
    end
  end
end

local previous_div = Div
function Div(div)
  if FORMAT:match('typst') then
    local made = brief_block(div)
    if made then return made end
  end
  return previous_div(div)
end

function Span(span)
  if FORMAT:match('typst') and span.classes:includes('label') then
    local check = span.classes:includes('check')
    local colour = check and '"#8b1a1a"' or '"#5c3b00"'
    local fill = check and '"#fdecec"' or '"#fff4e5"'
    local out = pandoc.List({pandoc.RawInline('typst',
      '#box(fill: rgb(' .. fill .. '), stroke: 0.5pt + rgb(' .. colour .. '), inset: (x: 2pt, y: 1.5pt), outset: (y: 1pt), radius: 2pt)[#text(size: 0.85em, weight: "bold", fill: rgb(' .. colour .. '))[')})
    out:extend(span.content)
    out:insert(pandoc.RawInline('typst', ']]'))
    return out
  end
end
