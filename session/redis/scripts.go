package redis

import redis "github.com/redis/go-redis/v9"

// The Lua scripts that make every write one atomic round trip. Keys and
// fields (see keys.go): KEYS[1] is the call's hash, whose fields are the
// variables (by name) and the call's metadata (names starting with '#',
// which no variable name can), KEYS[2] its history list (entry of version v
// at index v-1). ARGV[1] is the event channel, ARGV[2] this node's ID,
// ARGV[3] the call ID.
//
// Values are compact JSON texts handled as opaque strings (never decoded:
// cjson would round numbers and reorder keys), so a script can splice them
// into the history entry it appends. Names are checked by the domain and
// again in Go (safeName) before they reach a script.
//
// A refused write returns the session as it was; Go re-runs the domain's
// pure rule (session.Patch.Apply) on it to produce the exact same error as
// every other store, and to check that script and rule agree.

// luaLib is shared by the write scripts.
const luaLib = `
local function load(h)
  local all = redis.call('HGETALL', h)
  local cur = {}
  for i = 1, #all, 2 do cur[all[i]] = all[i + 1] end
  return all, cur
end

-- merge computes what the name/value pairs of ARGV from index first on
-- change: a value '' deletes. It returns the HSET arguments, the HDEL
-- names, the history entry's changes as JSON members, and the variable
-- count and bytes after the write (the domain's Session.Size).
local function merge(cur, first)
  local n, b = tonumber(cur['#n']), tonumber(cur['#b'])
  local set, del, ch = {}, {}, {}
  for i = first, #ARGV, 2 do
    local name, new = ARGV[i], ARGV[i + 1]
    local old = cur[name]
    if new == '' then
      if old then
        n = n - 1
        b = b - #name - #old
        del[#del + 1] = name
        ch[#ch + 1] = '"' .. name .. '":{"old":' .. old .. ',"new":null}'
      end
    elseif old ~= new then
      if old then
        b = b + #new - #old
      else
        n = n + 1
        b = b + #name + #new
      end
      set[#set + 1] = name
      set[#set + 1] = new
      ch[#ch + 1] = '"' .. name .. '":{"old":' .. (old or 'null') .. ',"new":' .. new .. '}'
    end
  end
  return set, del, ch, n, b
end

-- commit stores a merge as version v and appends its history entry.
local function commit(v, at, atJSON, actorJSON, set, del, ch, n, b)
  local f = {'#v', v, '#u', at, '#n', n, '#b', b}
  for i = 1, #set do f[#f + 1] = set[i] end
  redis.call('HSET', KEYS[1], unpack(f))
  if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end
  redis.call('RPUSH', KEYS[2], '{"version":' .. v .. ',"at":' .. atJSON .. ',"actor":' .. actorJSON .. ',"changes":{' .. table.concat(ch, ',') .. '}}')
end

local function notify(kind, v)
  redis.call('PUBLISH', ARGV[1], kind .. ' ' .. v .. ' ' .. ARGV[3] .. ' ' .. ARGV[2])
end
`

// scriptCreate stores a new call. ARGV: 4 call JSON, 5 start (hex), 6
// createdAt, 7 updatedAt, 8 version, 9 history entry JSON, 10 variable
// count, 11 bytes, 12… name, value pairs. KEYS[3], KEYS[4] (when given):
// the all-calls and active indexes. Returns {1} or {0, the existing call's
// start} when the ID is taken.
var scriptCreate = redis.NewScript(luaLib + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('HGET', KEYS[1], '#s') or ''}
end
local f = {'#v', ARGV[8], '#st', 'active', '#c', ARGV[6], '#u', ARGV[7], '#n', ARGV[10], '#b', ARGV[11], '#call', ARGV[4], '#s', ARGV[5]}
for i = 12, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('RPUSH', KEYS[2], ARGV[9])
if #KEYS > 2 then
  local m = ARGV[5] .. ARGV[3]
  redis.call('ZADD', KEYS[3], 0, m)
  redis.call('ZADD', KEYS[4], 0, m)
end
notify('s', ARGV[8])
return {1}
`)

// scriptApply merges a write. ARGV: 4 If-Match version (0: none), 5 '1'
// when the write may change an ended session (and is exempt from the
// limits, as session.Patch.AllowEnded says), 6 max variables, 7 max
// bytes, 8 time as JSON, 9 actor as JSON, 10 time as text, 11… name, value
// pairs. Returns {0} for no such call, else {status, version, HGETALL
// before}: 1 refused, 2 nothing changed, 3 committed as version.
var scriptApply = redis.NewScript(luaLib + `
local all, cur = load(KEYS[1])
if #all == 0 then return {0} end
local v = tonumber(cur['#v'])
local ifm = tonumber(ARGV[4])
if ifm ~= 0 and ifm ~= v then return {1, v, all} end
if cur['#st'] == 'ended' and ARGV[5] ~= '1' then return {1, v, all} end
local set, del, ch, n, b = merge(cur, 11)
if #ch == 0 then return {2, v, all} end
if ARGV[5] ~= '1' and (n > tonumber(ARGV[6]) or b > tonumber(ARGV[7])) then return {1, v, all} end
v = v + 1
commit(v, ARGV[10], ARGV[8], ARGV[9], set, del, ch, n, b)
notify('u', v)
return {3, v, all}
`)

// scriptEnd ends a call and merges the end-of-call write, which the limits
// do not apply to. ARGV: 4 end time as text, 5 end time (hex), 6 reason, 7
// write time as JSON, 8 actor as JSON, 9 write time as text, 10 expiry in
// ms (0: none), 11… name, value pairs. KEYS[3..5] (when given): the active,
// ended and by-end indexes. Returns {0} for no such call, else {status,
// version, HGETALL before}: 2 had ended already, 3 ended now.
var scriptEnd = redis.NewScript(luaLib + `
local all, cur = load(KEYS[1])
if #all == 0 then return {0} end
local v = tonumber(cur['#v'])
if cur['#st'] == 'ended' then return {2, v, all} end
local set, del, ch, n, b = merge(cur, 11)
if #ch > 0 then
  v = v + 1
  commit(v, ARGV[9], ARGV[7], ARGV[8], set, del, ch, n, b)
end
redis.call('HSET', KEYS[1], '#st', 'ended', '#e', ARGV[4], '#eh', ARGV[5], '#r', ARGV[6])
if #KEYS > 2 then
  local m = cur['#s'] .. ARGV[3]
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZADD', KEYS[4], 0, m)
  redis.call('ZADD', KEYS[5], 0, ARGV[5] .. m)
end
local ttl = tonumber(ARGV[10])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
notify('e', v)
return {3, v, all}
`)

// luaPurgeData deletes a call's keys if the call ended at the time a
// by-end index member names. It returns 'gone' when the keys are gone
// already (expired, or purged by another node), 'stale' when the call has
// not ended at that time (a by-end member left by an interrupted end in
// Cluster mode), 'deleted' when it deleted them.
const luaPurgeData = `
local function purgeData(endHex)
  local st = redis.call('HMGET', KEYS[1], '#st', '#eh')
  if not st[1] then return 'gone' end
  if st[1] ~= 'ended' or st[2] ~= endHex then return 'stale' end
  redis.call('DEL', KEYS[1], KEYS[2])
  return 'deleted'
end
`

// scriptPurge purges one call and its index entries atomically (not in
// Cluster mode). KEYS[3..6]: the all-calls, active, ended and by-end
// indexes. ARGV[1]: the by-end member. Returns 1 when this call removed it.
var scriptPurge = redis.NewScript(luaPurgeData + `
local m = ARGV[1]
local r = purgeData(string.sub(m, 1, 16))
local removed = redis.call('ZREM', KEYS[6], m)
if r == 'stale' then return 0 end
local sm = string.sub(m, 17)
redis.call('ZREM', KEYS[3], sm)
redis.call('ZREM', KEYS[4], sm)
redis.call('ZREM', KEYS[5], sm)
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
