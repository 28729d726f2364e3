"""The Lua scripts behind ``RedisPresence``: each presence operation is one atomic script.

A classroom is one JSON document (``<prefix>room:<session>``)::

    {"v": version, "closed": bool,
     "ps": [{"u": user, "n": name, "r": role, "st": "present"|"reconnecting",
             "dl": "deadline" (reconnecting only), "c": [connection, ...]}, ...]}

``ps`` keeps join order. Every script that writes a room also keeps the indexes in step:

- ``<prefix>rooms``        SET of classrooms with anyone in them
- ``<prefix>due``          ZSET classroom -> earliest reconnecting deadline
- ``<prefix>conns:<node>`` SET of ``[session, user, connection]`` held by a node (``<node>:<sid>``)
- ``<prefix>nodes``        ZSET node -> heartbeat expiry; ``<prefix>seen`` HASH node -> last beat
- ``<prefix>reaping``      HASH dead node -> last beat, while survivors drop its connections
- ``<prefix>gone:<node>``  a fenced node's tombstone: its heartbeats and joins are refused
- ``<prefix>home:<session>`` ``{"node", "url"}``: the process running the classroom's media

The rules are those of ``classroom.rooms.model.RoomState``; the contract suite holds both to them.
Keys are built inside the scripts from the prefix, so this needs one Redis (not Redis Cluster).
"""

from __future__ import annotations

# ARGV[1] = key prefix, ARGV[2] = seconds an empty classroom's key is kept; the rest per script.
PRELUDE = r"""
local P = ARGV[1]
local ROOM_TTL = tonumber(ARGV[2])
local KEY = KEYS[1]

local function load_room()
  local raw = redis.call('GET', KEY)
  if not raw then return {v = 0, closed = false, ps = {}}, false end
  return cjson.decode(raw), true
end

local function node_of(conn)
  local i = string.find(conn, ':', 1, true)
  if i == nil or i == 1 then return nil end
  return string.sub(conn, 1, i - 1)
end

local function fenced(node)
  return redis.call('HEXISTS', P .. 'reaping', node) == 1
    or redis.call('EXISTS', P .. 'gone:' .. node) == 1
end

local function index_add(sid, uid, conn)
  local node = node_of(conn)
  if node then redis.call('SADD', P .. 'conns:' .. node, cjson.encode({sid, uid, conn})) end
end

local function index_del(sid, uid, conn)
  local node = node_of(conn)
  if node then redis.call('SREM', P .. 'conns:' .. node, cjson.encode({sid, uid, conn})) end
end

local function index_del_all(sid, p)
  for _, conn in ipairs(p.c) do index_del(sid, p.u, conn) end
end

local function find(room, uid)
  for i, p in ipairs(room.ps) do
    if p.u == uid then return i, p end
  end
  return nil, nil
end

local function position(list, value)
  for i, v in ipairs(list) do
    if v == value then return i end
  end
  return nil
end

local function member(p) return {p.u, p.n, p.r} end

local function save(sid, room)
  redis.call('SET', KEY, cjson.encode(room))
  local earliest, earliest_raw = nil, nil
  for _, p in ipairs(room.ps) do
    if p.st == 'reconnecting' and p.dl then
      local d = tonumber(p.dl)
      if earliest == nil or d < earliest then earliest, earliest_raw = d, p.dl end
    end
  end
  if earliest_raw then
    redis.call('ZADD', P .. 'due', earliest_raw, sid)
  else
    redis.call('ZREM', P .. 'due', sid)
  end
  if #room.ps == 0 then
    redis.call('SREM', P .. 'rooms', sid)
    redis.call('EXPIRE', KEY, ROOM_TTL)
  else
    redis.call('SADD', P .. 'rooms', sid)
  end
end

local function result(room, changed, what)
  what = what or {}
  return cjson.encode({
    room = room, changed = changed,
    joined = what.joined or {}, left = what.left or {},
    reconnecting = what.reconnecting or {}, restored = what.restored or {},
  })
end

local function refuse(code) return cjson.encode({err = code}) end
"""

# ARGV: 3 session, 4 user, 5 name, 6 role, 7 connection
JOIN = r"""
local sid, uid, name, role, conn = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local node = node_of(conn)
if node and fenced(node) then return refuse('node_fenced') end
local room = load_room()
if room.closed then return refuse('closed') end
local _, p = find(room, uid)
if p == nil then
  table.insert(room.ps, {u = uid, n = name, r = role, st = 'present', c = {conn}})
  room.v = room.v + 1
  index_add(sid, uid, conn)
  save(sid, room)
  return result(room, true, {joined = {{uid, name, role}}})
end
if position(p.c, conn) == nil then table.insert(p.c, conn) end
p.n, p.r = name, role
index_add(sid, uid, conn)
if p.st == 'reconnecting' then
  p.st, p.dl = 'present', nil
  room.v = room.v + 1
  save(sid, room)
  return result(room, true, {restored = {{uid, name, role}}})
end
save(sid, room)
return result(room, false)
"""

# ARGV: 3 session, 4 user, 5 connection, 6 reason ("drop" turns the user reconnecting),
#       7 deadline (drop only)
LEAVE = r"""
local sid, uid, conn, reason, deadline = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
index_del(sid, uid, conn)
local room, exists = load_room()
local i, p = find(room, uid)
if p == nil then return result(room, false) end
local j = position(p.c, conn)
if j == nil then return result(room, false) end
table.remove(p.c, j)
if reason == 'drop' then
  if #p.c > 0 or p.st == 'reconnecting' then
    save(sid, room)
    return result(room, false)
  end
  p.st, p.dl = 'reconnecting', deadline
  room.v = room.v + 1
  save(sid, room)
  return result(room, true, {reconnecting = {member(p)}})
end
if #p.c > 0 then
  save(sid, room)
  return result(room, false)
end
table.remove(room.ps, i)
room.v = room.v + 1
save(sid, room)
return result(room, true, {left = {{member(p), reason}}})
"""

# ARGV: 3 session, 4 now
EXPIRE = r"""
local sid, now = ARGV[3], tonumber(ARGV[4])
local room = load_room()
local keep, left = {}, {}
for _, p in ipairs(room.ps) do
  if p.st == 'reconnecting' and p.dl and tonumber(p.dl) <= now then
    index_del_all(sid, p)
    table.insert(left, {member(p), 'timeout'})
  else
    table.insert(keep, p)
  end
end
if #left == 0 then return result(room, false) end
room.ps = keep
room.v = room.v + 1
save(sid, room)
return result(room, true, {left = left})
"""

# ARGV: 3 session, 4 user, 5 reason
REMOVE = r"""
local sid, uid, reason = ARGV[3], ARGV[4], ARGV[5]
local room = load_room()
local i, p = find(room, uid)
if p == nil then return result(room, false) end
index_del_all(sid, p)
table.remove(room.ps, i)
room.v = room.v + 1
save(sid, room)
return result(room, true, {left = {{member(p), reason}}})
"""

# ARGV: 3 session, 4 tutor. The completion gate: refuse while anyone but the tutor remains.
GATE = r"""
local sid, tutor = ARGV[3], ARGV[4]
local room = load_room()
for _, p in ipairs(room.ps) do
  if p.u ~= tutor then return refuse('participants_remain') end
end
room.closed = true
save(sid, room)
return result(room, false)
"""

# ARGV: 3 session
REOPEN = r"""
local sid = ARGV[3]
local room, exists = load_room()
if not exists then return result(room, false) end
room.closed = false
save(sid, room)
return result(room, false)
"""

# ARGV: 3 session. Everyone leaves with reason "closed"; joins are refused from now on.
CLOSE = r"""
local sid = ARGV[3]
local room = load_room()
room.closed = true
if #room.ps == 0 then
  save(sid, room)
  return result(room, false)
end
local left = {}
for _, p in ipairs(room.ps) do
  index_del_all(sid, p)
  table.insert(left, {member(p), 'closed'})
end
room.ps = {}
room.v = room.v + 1
save(sid, room)
return result(room, true, {left = left})
"""

# KEYS[1] = home key. ARGV: 3 node, 4 its public URL, 5 now. The media home: kept while its node
# heartbeats, else (first join, home dead or fenced) taken by the caller. Returns the home.
CLAIM_HOME = r"""
local node, url, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
if fenced(node) then return refuse('node_fenced') end
local raw = redis.call('GET', KEY)
if raw then
  local home = cjson.decode(raw)
  if home.node ~= node then
    local expiry = redis.call('ZSCORE', P .. 'nodes', home.node)
    if expiry and tonumber(expiry) >= now and not fenced(home.node) then
      return cjson.encode({node = home.node, url = home.url})
    end
  end
end
redis.call('SET', KEY, cjson.encode({node = node, url = url}), 'EX', ROOM_TTL)
return cjson.encode({node = node, url = url})
"""

# ARGV: 3 node, 4 now, 5 ttl. Returns 0 when the node was declared dead (fenced), else 1.
HEARTBEAT = r"""
local node, now, ttl = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if fenced(node) then return 0 end
redis.call('ZADD', P .. 'nodes', now + ttl, node)
redis.call('HSET', P .. 'seen', node, ARGV[4])
return 1
"""

# ARGV: 3 now, 4 tombstone ttl. Declares nodes whose heartbeat expired dead (atomically, so a
# late heartbeat is fenced), retires dead nodes with nothing left, and returns what is left as
# [node, last beat, [session, user, connection]] for the survivors to drop.
DEAD_CONNECTIONS = r"""
local now, tombstone = ARGV[3], tonumber(ARGV[4])
for _, node in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', now)) do
  local seen = redis.call('HGET', P .. 'seen', node) or now
  redis.call('ZREM', P .. 'nodes', node)
  redis.call('HDEL', P .. 'seen', node)
  redis.call('HSET', P .. 'reaping', node, seen)
end
local out = {}
local reaping = redis.call('HGETALL', P .. 'reaping')
for i = 1, #reaping, 2 do
  local node, seen = reaping[i], reaping[i + 1]
  local entries = redis.call('SMEMBERS', P .. 'conns:' .. node)
  if #entries == 0 then
    redis.call('HDEL', P .. 'reaping', node)
    redis.call('DEL', P .. 'conns:' .. node)
    redis.call('SET', P .. 'gone:' .. node, '1', 'EX', tombstone)
  else
    for _, entry in ipairs(entries) do table.insert(out, {node, seen, cjson.decode(entry)}) end
  end
end
if #out == 0 then return '[]' end
return cjson.encode(out)
"""

# ARGV: 3 node, 4 now, 5 tombstone ttl. A node shutting down: gone at once when it holds no
# connection, else declared dead now so that survivors drop what it still holds.
RETIRE = r"""
local node, now, tombstone = ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('SCARD', P .. 'conns:' .. node) == 0 then
  redis.call('ZREM', P .. 'nodes', node)
  redis.call('HDEL', P .. 'seen', node)
  redis.call('SET', P .. 'gone:' .. node, '1', 'EX', tombstone)
  return 0
end
if redis.call('HEXISTS', P .. 'reaping', node) == 0 then
  redis.call('ZADD', P .. 'nodes', now, node)
  redis.call('HSET', P .. 'seen', node, now)
end
return 1
"""
