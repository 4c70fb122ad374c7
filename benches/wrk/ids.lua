-- wrk script: GET /images/{id}, rotating over the ids listed in $GLINT_IDS_FILE (one a line),
-- each thread starting at a different place. Against the baseline server the same paths are
-- requested, so wrk spends the same work per request on both.
local ids = {}
for line in io.lines(os.getenv("GLINT_IDS_FILE")) do
  ids[#ids + 1] = line
end
local n = 0

setup = function(thread)
  n = n + 1
  thread:set("offset", n * 997)
end

init = function(args)
  n = offset or 0
end

request = function()
  n = n + 1
  return wrk.format("GET", "/images/" .. ids[(n % #ids) + 1])
end
