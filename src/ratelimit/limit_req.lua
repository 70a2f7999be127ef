-- nginx limit_req (ngx_http_limit_req_lookup) over N zones, all or nothing.
-- KEYS[i]      bucket of zone i (value "excess:last", milli-requests : ms)
-- ARGV[2i-1]   zone i's rate, milli-requests per second (>= 1)
-- ARGV[2i]     zone i's burst * 1000
-- Returns {0, excess_1, ..., excess_N}: every zone accepts, all stored.
--         {i, excess_i}: zone i (the first in order) rejects; nothing stored.
-- ARGV[2N+1]   optional: the time in ms, for the differential test only
--              (rampart never sends it: Redis's clock is every instance's).
local n = #KEYS
local now
if ARGV[2 * n + 1] then
  now = tonumber(ARGV[2 * n + 1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ex, last, ttl = {}, {}, {}
for i = 1, n do
  local rate = math.max(tonumber(ARGV[2 * i - 1]), 1)
  local burst = tonumber(ARGV[2 * i])
  local e, l = 0, now                      -- a new key: excess 0 (nginx)
  local v = redis.call('GET', KEYS[i])
  local pe, pl
  if v then pe, pl = string.match(v, '^(%d+):(%d+)$') end
  if pe then
    pe, pl = tonumber(pe), tonumber(pl)
    local ms = now - pl
    if ms < -60000 then ms = 1 elseif ms < 0 then ms = 0 end
    e = pe - math.floor(rate * ms / 1000) + 1000
    if e < 0 then e = 0 end
    if ms == 0 then l = pl end
  end
  if e > burst then return {i, e} end
  ex[i], last[i] = e, l
  -- Kept until drained as ratelimit::drained() says: rate*(t-last)/1000 >= e+1000.
  ttl[i] = math.max(l - now, 0) + math.ceil((e + 1000) * 1000 / rate) + 1000
end
local out = {0}
for i = 1, n do
  redis.call('SET', KEYS[i], string.format('%d:%d', ex[i], last[i]), 'PX', ttl[i])
  out[i + 1] = ex[i]
end
return out
