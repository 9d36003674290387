"""The Lua scripts Redis runs for litegate: each is one round trip and atomic across instances.

ADMIT (the hot path, once per model request): roll the key's windows, check rpm, tpm,
concurrency and day/month budgets in the same order as core.limits, count the request in, and
return the counts plus every live cooldown, so that cooldowns seen elsewhere reach this instance
with no extra trip. Times are Redis's own (TIME), so the machines' clocks need not agree.
FLUSH (after the answer, coalesced): releases, tokens, budgets, usage and cooldowns, applied only
if the data generation (epoch) is still the one this instance knows.
SEED: on joining (start, after an outage, after Redis lost its data) this instance replaces its own
budget and usage counts with the sums from its SQLite log: exact however Redis was restarted.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: rpm, tpm, conc, day, month, cool, epoch, cost. ARGV: has_key, rpm, tpm, max_concurrent, tokens/day,
# tokens/month, cost/month ('' = none), member (request id), lease_s.
# Reply: verdict, epoch, requests, minute tokens, day tokens, month tokens, month cost, retry-after,
# running, then deployment, "seconds left|error" pairs.
ADMIT = _NOW + """
local epoch = redis.call('GET', KEYS[7]) or ''
local cool = {}
local c = redis.call('HGETALL', KEYS[6])
for i = 1, #c, 2 do
  local bar = string.find(c[i + 1], '|', 1, true)
  local untilv = tonumber(string.sub(c[i + 1], 1, (bar or 0) - 1))
  if untilv and untilv > now then
    cool[#cool + 1] = c[i]
    cool[#cool + 1] = tostring(untilv - now) .. string.sub(c[i + 1], bar or #c[i + 1] + 1)
  else
    redis.call('HDEL', KEYS[6], c[i])
  end
end
local function reply(verdict, reqs, minute, day, mt, mc, retry, running)
  local out = {verdict, epoch, reqs, minute, tostring(day), tostring(mt), tostring(mc), tostring(retry), running}
  for i = 1, #cool do out[#out + 1] = cool[i] end
  return out
end
if ARGV[1] == '0' then return reply('ok', 0, 0, 0, 0, 0, 0, 0) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60)
local reqs = redis.call('ZCARD', KEYS[1])
local minute, oldest = 0, nil
local tk = redis.call('HGETALL', KEYS[2])
for i = 1, #tk, 2 do
  local s = tonumber(tk[i])
  if s <= now - 60 then
    redis.call('HDEL', KEYS[2], tk[i])
  else
    minute = minute + tonumber(tk[i + 1])
    if oldest == nil or s < oldest then oldest = s end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local running = redis.call('ZCARD', KEYS[3])
local function total(key)
  local sum = 0
  for _, v in ipairs(redis.call('HVALS', key)) do sum = sum + tonumber(v) end
  return sum
end
local day, mt, mc = total(KEYS[4]), total(KEYS[5]), total(KEYS[8])
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if rpm and reqs >= rpm then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return reply('rpm', reqs, minute, day, mt, mc, tonumber(first[2] or now) + 60 - now, running)
end
if tpm and minute >= tpm then return reply('tpm', reqs, minute, day, mt, mc, (oldest or now) + 60 - now, running) end
if conc and running >= conc then return reply('concurrency', reqs, minute, day, mt, mc, 1, running) end
local dl, ml, cl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if dl and day >= dl then return reply('day_tokens', reqs, minute, day, mt, mc, 0, running) end
if ml and mt >= ml then return reply('month_tokens', reqs, minute, day, mt, mc, 0, running) end
if cl and mc >= cl then return reply('month_cost', reqs, minute, day, mt, mc, 0, running) end
redis.call('ZADD', KEYS[1], now, ARGV[8])
redis.call('EXPIRE', KEYS[1], 120)
if conc then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[9]), ARGV[8])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[9]) + 60)
  running = running + 1
end
return reply('ok', reqs + 1, minute, day, mt, mc, 0, running)
"""



def _counts(inc: str, inc_float: str, instance: str, clear: str = "") -> str:
    """Lua applying a payload's budgets (day, mon) and usage hours (use), then marking the instance
    seen: FLUSH adds them (HINCRBY), SEED writes this instance's own values (HSET)."""
    return f"""
for _, r in ipairs(p.day) do
  redis.call('{inc}', r[1], {instance}, r[2])
  redis.call('EXPIRE', r[1], r[3])
end
for _, r in ipairs(p.mon) do
  redis.call('{inc}', r[1], {instance}, r[3])
  redis.call('{inc_float}', r[2], {instance}, r[4])
  redis.call('EXPIRE', r[1], r[5])
  redis.call('EXPIRE', r[2], r[5])
end
for _, r in ipairs(p.use) do{clear}
  for _, f in ipairs(r[2]) do redis.call('{inc_float}', r[1], f[1], f[2]) end
  redis.call('EXPIRE', r[1], r[3])
end
redis.call('HSET', p.inst[1], p.inst[2], tostring(now))
"""


# KEYS: epoch. ARGV: the epoch this instance knows, the Pending payload as JSON, the instance. Reply 1,
# or 0 when the generation changed (nothing applied: the instance re-seeds from its SQLite log).
FLUSH = _NOW + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local p = cjson.decode(ARGV[2])
for _, r in ipairs(p.rel) do redis.call('ZREM', r[1], r[2]) end
local sec = tostring(math.floor(now))
for _, r in ipairs(p.tpm) do
  redis.call('HINCRBY', r[1], sec, r[2])
  redis.call('EXPIRE', r[1], 120)
end
for _, r in ipairs(p.cool) do redis.call('HSET', r[1], r[2], tostring(now + r[3]) .. '|' .. r[4]) end
""" + _counts("HINCRBY", "HINCRBYFLOAT", "ARGV[3]") + "return 1\n"

# KEYS: epoch. ARGV: a fresh epoch (used if none is set), instance, JSON {day: [[key, tokens, ttl]],
# mon: [[mon key, cost key, tokens, cost, ttl]], use: [[key, [[field, value]], ttl]], inst: [instances
# hash, instance]}. Only this instance's own counts are written, as values (not increments), so a
# second seed changes nothing. Reply: the epoch.
SEED = _NOW + """
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
local p = cjson.decode(ARGV[3])
""" + _counts("HSET", "HSET", "ARGV[2]", clear="\n  redis.call('DEL', r[1])") + "return e\n"
