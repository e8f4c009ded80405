package redis

import redis "github.com/redis/go-redis/v9"

// The Lua scripts that make every write one atomic round trip.
//
// A session is one string (see blob.go): a header, "1", version, state,
// createdAt, updatedAt, variable count and bytes, joined by NUL, followed
// by NUL, name, NUL, value for each variable. NUL can separate them
// because neither a variable name nor compact JSON contains one. Reading a
// session is then one GET (measured: 0.6 us of Redis time, against 4 us
// for an HGETALL of the same session as a hash), and a script gets and
// returns one string. A write script costs Redis tens of microseconds
// whichever way the session is stored (58 us measured, docs/redis.md): Lua
// in Redis costs about a microsecond per string operation or redis.call,
// against under 1 us for a whole SET.
//
// KEYS[1] is the session, KEYS[2] the history list (version v at index
// v-1), KEYS[3] the call's hash (the call as JSON, its start as hex, its
// state, end time and reason). ARGV[1] is the event channel, ARGV[2] this
// node's ID, ARGV[3] the call ID.
//
// Values are compact JSON texts handled as opaque strings, never decoded
// (cjson would round numbers and reorder keys), so the scripts can splice
// them into the history entry they append. Names are checked by the domain
// and again in Go (safeName) before they reach a script.
//
// A refused write returns the session as it was; Go re-runs the domain's
// pure rule (session.Patch.Apply) on it to produce the exact same error as
// every other store, and to check that script and rule agree.

// luaLib is shared by the write scripts.
const luaLib = `
local SEP = '\0'

-- split returns the header fields of a session and its variables part,
-- which is empty or starts with SEP.
local function split(blob)
  local h, pos = {}, 1
  for i = 1, 6 do
    local e = string.find(blob, SEP, pos, true)
    h[i] = string.sub(blob, pos, e - 1)
    pos = e + 1
  end
  local e = string.find(blob, SEP, pos, true)
  if e then
    h[7] = string.sub(blob, pos, e - 1)
    return h, string.sub(blob, e)
  end
  h[7] = string.sub(blob, pos)
  return h, ''
end

-- find locates a variable: the start of its SEP name SEP value, and the
-- first and last byte of its value.
local function find(vars, name)
  local s, e = string.find(vars, SEP .. name .. SEP, 1, true)
  if not s then return nil end
  local n = string.find(vars, SEP, e + 1, true)
  if n then return s, e + 1, n - 1 end
  return s, e + 1, #vars
end

-- merge applies the name/value pairs of ARGV from index first on to vars:
-- a value '' deletes. It returns the new variables part, the history
-- entry's changes as JSON members, and the variable count and bytes after
-- the write (the domain's Session.Size).
local function merge(vars, n, b, first)
  local ch = {}
  for i = first, #ARGV, 2 do
    local name, new = ARGV[i], ARGV[i + 1]
    local s, vs, ve = find(vars, name)
    local old
    if s then old = string.sub(vars, vs, ve) end
    if new == '' then
      if old then
        n = n - 1
        b = b - #name - #old
        vars = string.sub(vars, 1, s - 1) .. string.sub(vars, ve + 1)
        ch[#ch + 1] = '"' .. name .. '":{"old":' .. old .. ',"new":null}'
      end
    elseif old ~= new then
      if old then
        b = b + #new - #old
        vars = string.sub(vars, 1, vs - 1) .. new .. string.sub(vars, ve + 1)
      else
        n = n + 1
        b = b + #name + #new
        vars = vars .. SEP .. name .. SEP .. new
      end
      ch[#ch + 1] = '"' .. name .. '":{"old":' .. (old or 'null') .. ',"new":' .. new .. '}'
    end
  end
  return vars, ch, n, b
end

-- commit stores the session at version v and appends its history entry,
-- which records the type of the event the write publishes.
local function commit(h, vars, v, at, atJSON, actorJSON, event, ch, n, b)
  redis.call('SET', KEYS[1], table.concat({'1', v, h[3], h[4], at, n, b}, SEP) .. vars, 'KEEPTTL')
  redis.call('RPUSH', KEYS[2], '{"version":' .. v .. ',"at":' .. atJSON .. ',"actor":' .. actorJSON .. ',"event":"' .. event .. '","changes":{' .. table.concat(ch, ',') .. '}}')
end

local function notify(event, v)
  redis.call('PUBLISH', ARGV[1], event .. ' ' .. v .. ' ' .. ARGV[3] .. ' ' .. ARGV[2])
end
`

// scriptCreate stores a new call, with the node that created it (the one
// that holds its SIP dialog, if it has one). ARGV: 4 the session (built by
// Go), 5 version, 6 history entry JSON, 7 call JSON, 8 start (hex), 9 state,
// and for a call that is created ended 10 end time as text, 11 reason, 12
// end (hex), 13 expiry in ms (0: none). KEYS[4..7] (when given): the
// all-calls, active, ended and by-end indexes. Returns {1}, or {0, the
// existing call's start} when the ID is taken.
var scriptCreate = redis.NewScript(luaLib + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[3], 'start') or ''}
end
redis.call('SET', KEYS[1], ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[3], 'call', ARGV[7], 'start', ARGV[8], 'state', ARGV[9], 'node', ARGV[2])
local ended = ARGV[9] == 'ended'
if ended then
  redis.call('HSET', KEYS[3], 'ended', ARGV[10], 'reason', ARGV[11], 'endhex', ARGV[12])
  local ttl = tonumber(ARGV[13])
  if ttl > 0 then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
if #KEYS > 3 then
  local m = ARGV[8] .. ARGV[3]
  redis.call('ZADD', KEYS[4], 0, m)
  if ended then
    redis.call('ZADD', KEYS[6], 0, m)
    redis.call('ZADD', KEYS[7], 0, ARGV[12] .. m)
  else
    redis.call('ZADD', KEYS[5], 0, m)
  end
end
notify('call.started', ARGV[5])
if ended then notify('call.ended', ARGV[5]) end
return {1}
`)

// scriptApply merges a write. ARGV: 4 If-Match version (0: none), 5 '1'
// when the write may change an ended session (and is exempt from the
// limits, as session.Patch.AllowEnded says), 6 max variables, 7 max
// bytes, 8 time as JSON, 9 actor as JSON, 10 time as text, 11 the type of
// the event to publish, 12… name, value pairs. Returns {0} for no such
// call, else {status, version, the session before}: 1 refused, 2 nothing
// changed, 3 committed as version.
var scriptApply = redis.NewScript(luaLib + `
local blob = redis.call('GET', KEYS[1])
if not blob then return {0} end
local h, vars = split(blob)
local v = tonumber(h[2])
local ifm = tonumber(ARGV[4])
if ifm ~= 0 and ifm ~= v then return {1, v, blob} end
if h[3] == 'ended' and ARGV[5] ~= '1' then return {1, v, blob} end
local ch, n, b
vars, ch, n, b = merge(vars, tonumber(h[6]), tonumber(h[7]), 12)
if #ch == 0 then return {2, v, blob} end
if ARGV[5] ~= '1' and (n > tonumber(ARGV[6]) or b > tonumber(ARGV[7])) then return {1, v, blob} end
v = v + 1
commit(h, vars, v, ARGV[10], ARGV[8], ARGV[9], ARGV[11], ch, n, b)
notify(ARGV[11], v)
return {3, v, blob}
`)

// scriptEnd ends a call and merges the end-of-call write, which the limits
// do not apply to. ARGV: 4 end time as text, 5 end time (hex), 6 reason, 7
// write time as JSON, 8 actor as JSON, 9 write time as text, 10 expiry in
// ms (0: none), 11… name, value pairs. KEYS[4], KEYS[5]: the flow state
// and outbox entries (for the expiry); KEYS[6..8] (when given): the active,
// ended and by-end indexes. Returns {0} for no such call, else
// {status, version, the session before, the call's JSON, start, end time,
// reason, end (hex)}: 2 had ended already, 3 ended now.
var scriptEnd = redis.NewScript(luaLib + `
local blob = redis.call('GET', KEYS[1])
if not blob then return {0} end
local c = redis.call('HMGET', KEYS[3], 'call', 'start', 'ended', 'reason', 'endhex')
local h, vars = split(blob)
local v = tonumber(h[2])
if h[3] == 'ended' then return {2, v, blob, c[1], c[2], c[3], c[4], c[5]} end
local ch, n, b
vars, ch, n, b = merge(vars, tonumber(h[6]), tonumber(h[7]), 11)
h[3] = 'ended'
if #ch > 0 then
  v = v + 1
  commit(h, vars, v, ARGV[9], ARGV[7], ARGV[8], 'call.ended', ch, n, b)
else
  redis.call('SET', KEYS[1], table.concat(h, SEP) .. vars, 'KEEPTTL')
end
redis.call('HSET', KEYS[3], 'state', 'ended', 'ended', ARGV[4], 'reason', ARGV[6], 'endhex', ARGV[5])
if #KEYS > 5 then
  local m = c[2] .. ARGV[3]
  redis.call('ZREM', KEYS[6], m)
  redis.call('ZADD', KEYS[7], 0, m)
  redis.call('ZADD', KEYS[8], 0, ARGV[5] .. m)
end
local ttl = tonumber(ARGV[10])
if ttl > 0 then
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
notify('call.ended', v)
return {3, v, blob, c[1], c[2], ARGV[4], ARGV[6], ARGV[5]}
`)

// luaPurgeData deletes a call's keys (KEYS[1..5]: session, history, call,
// flow state, outbox entries) if the call ended at the time a by-end index
// member names. It returns 'gone' when the call is gone already (expired,
// or purged by another node), 'stale' when the call has not ended at that
// time (a by-end member left by an interrupted end in Cluster mode),
// 'deleted' when it deleted them.
const luaPurgeData = `
local function purgeData(endHex)
  local st = redis.call('HMGET', KEYS[3], 'state', 'endhex')
  if not st[1] then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[4], KEYS[5])
    return 'gone'
  end
  if st[1] ~= 'ended' or st[2] ~= endHex then return 'stale' end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  return 'deleted'
end
`

// scriptPurge purges one call, its index entries and its pending outbox
// entries atomically (not in Cluster mode). KEYS[6..11]: the all-calls,
// active, ended and by-end indexes, the pending outbox and the claims.
// ARGV[1]: the by-end member, ARGV[2] the call ID. Returns 1 when this call
// removed it.
var scriptPurge = redis.NewScript(luaPurgeData + `
local m = ARGV[1]
local ids = redis.call('HKEYS', KEYS[5])
local r = purgeData(string.sub(m, 1, 16))
local removed = redis.call('ZREM', KEYS[9], m)
if r == 'stale' then return 0 end
for _, id in ipairs(ids) do
  local om = ARGV[2] .. '/' .. id
  redis.call('ZREM', KEYS[10], om)
  redis.call('HDEL', KEYS[11], om)
end
local sm = string.sub(m, 17)
redis.call('ZREM', KEYS[6], sm)
redis.call('ZREM', KEYS[7], sm)
redis.call('ZREM', KEYS[8], sm)
return removed
`)

// scriptPurgeData is purgeData on its own, for Cluster mode. ARGV[1]: the
// end time (hex).
var scriptPurgeData = redis.NewScript(luaPurgeData + `
return purgeData(ARGV[1])
`)

// scriptPurgeIndex removes a purged call's index entries, for Cluster mode:
// KEYS are the all-calls, active, ended and by-end indexes, ARGV[1] the
// by-end member, ARGV[2] '1' to remove the start-ordered entries too.
// Returns 1 when this call removed the by-end member.
var scriptPurgeIndex = redis.NewScript(`
local m = ARGV[1]
if ARGV[2] == '1' then
  local sm = string.sub(m, 17)
  redis.call('ZREM', KEYS[1], sm)
  redis.call('ZREM', KEYS[2], sm)
  redis.call('ZREM', KEYS[3], sm)
end
return redis.call('ZREM', KEYS[4], m)
`)

// The outbox (see outbox.go). A call's entries live with it: KEYS[1] its
// session (to check the call exists), KEYS[2] its flow state, KEYS[3] its
// entries (a hash by entry ID). The pending index and the claims live in a
// slot of their own: KEYS[4] the pending entries (a sorted set of
// "<call ID>/<entry ID>" by due time in microseconds), KEYS[5] the claims
// (a hash: member → node ID). Outside Cluster mode one script updates
// both; in Cluster mode Go runs the index part as separate steps.

// scriptSaveRun stores a flow state (ARGV[3], unless ARGV[2] is '0') and
// queues entries: ARGV[1] this node, ARGV[4] the call ID, ARGV[5] the most
// entries one automation's events may fire on a call, then per entry its
// ID, its JSON, its due time (empty when finished) and, for an entry fired
// by an event, its automation (else empty). The entries an automation's
// events fired are counted in the call's entries hash, under '#fired:'
// and the automation: past the most, an entry is left out. Queued entries
// are claimed by this node, which delivers them. Returns {1, the IDs left
// out…}, 0 when there is no such call, or {-1, ID} when an entry ID exists
// (nothing is written).
var scriptSaveRun = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 6, #ARGV, 4 do
  if redis.call('HEXISTS', KEYS[3], ARGV[i]) == 1 then return {-1, ARGV[i]} end
end
if ARGV[2] == '1' then redis.call('SET', KEYS[2], ARGV[3], 'KEEPTTL') end
local out = {1}
local most = tonumber(ARGV[5])
for i = 6, #ARGV, 4 do
  local keep = true
  if ARGV[i + 3] ~= '' then
    local f = '#fired:' .. ARGV[i + 3]
    if (tonumber(redis.call('HGET', KEYS[3], f)) or 0) >= most then
      keep = false
      out[#out + 1] = ARGV[i]
    else
      redis.call('HINCRBY', KEYS[3], f, 1)
    end
  end
  if keep then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
    if #KEYS > 3 and ARGV[i + 2] ~= '' then
      local m = ARGV[4] .. '/' .. ARGV[i]
      redis.call('ZADD', KEYS[4], ARGV[i + 2], m)
      redis.call('HSET', KEYS[5], m, ARGV[1])
    end
  end
end
return out
`)

// scriptUpdateEntry records an attempt: ARGV[1] this node, ARGV[2] the
// member, ARGV[3] the entry ID, ARGV[4] its JSON, ARGV[5] its due time (empty
// when finished). Returns 1, 0 when the entry is gone, -1 when another
// node has claimed it (this node was taken for dead; nothing is written).
var scriptUpdateEntry = redis.NewScript(`
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return 0 end
local o = redis.call('HGET', KEYS[5], ARGV[2])
if o and o ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[4], ARGV[2])
  redis.call('HDEL', KEYS[5], ARGV[2])
end
return 1
`)

// scriptUpdateData is the data part of scriptUpdateEntry, for Cluster mode
// (KEYS: the call's entries): ARGV[1] the entry ID, ARGV[2] its JSON.
var scriptUpdateData = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// scriptUpdateIndex is the index part, for Cluster mode (KEYS: pending,
// claims): ARGV[1] this node, ARGV[2] the member, ARGV[3] the due time (empty
// when finished; 'check' only checks the claim). Returns 1, or -1 when
// another node has claimed the entry.
var scriptUpdateIndex = redis.NewScript(`
local o = redis.call('HGET', KEYS[2], ARGV[2])
if o and o ~= ARGV[1] then return -1 end
if ARGV[3] == 'check' then return 1 end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
`)

// scriptClaim renews this node's lease and claims the pending entries it
// may deliver: its own, unclaimed ones, and those of nodes whose lease ran
// out. KEYS: pending, claims, leases (a sorted set: node → lease end in
// ms); ARGV[1] this node, ARGV[2] the lease in ms. Times come from Redis'
// clock, so the nodes' clocks do not matter. Returns the members, soonest
// due first.
var scriptClaim = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 86400000)
local alive, out = {}, {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local o = redis.call('HGET', KEYS[2], m)
  local mine = o == ARGV[1]
  if not mine then
    local live = false
    if o then
      if alive[o] == nil then
        local lease = redis.call('ZSCORE', KEYS[3], o)
        alive[o] = lease ~= false and tonumber(lease) > now
      end
      live = alive[o]
    end
    if not live then
      redis.call('HSET', KEYS[2], m, ARGV[1])
      mine = true
    end
  end
  if mine then out[#out + 1] = m end
end
return out
`)

// scriptHeartbeat renews this node's lease (KEYS[1]: the leases; ARGV[1]
// this node, ARGV[2] the lease in ms), or ends it when ARGV[2] is 0.
var scriptHeartbeat = redis.NewScript(`
if ARGV[2] == '0' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`)
