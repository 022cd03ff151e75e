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
