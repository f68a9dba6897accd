package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/store"
)

// opsScript runs a list of writes, each on one of its keys, if the guard
// holds. ARGV[1] is the guard: "-" for none, or "=" and the ":rev" that
// KEYS[1] must have ("" when it has none or does not exist). Then come the
// ops: a letter, the number of its key in KEYS, and its arguments:
//
//	D k            DEL
//	H k n f v ...  HSET of n field, value pairs
//	X k n f ...    HDEL of n fields
//	R k            HINCRBY ":rev" 1
//	E k ms         PEXPIRE
//	Z k score m    ZADD
//	U k score m    ZADD XX: a new score for an entry that is there
//	z k m          ZREM
//	C k score      ZREMRANGEBYSCORE -inf (score
//
// It returns 1 when it wrote, and 0 when the guard failed and it wrote
// nothing. On a single server one call holds every write of an operation,
// so the operation happens whole or not at all; on Cluster every key of
// one call is in one slot.
const opsScript = `
local guard = ARGV[1]
if guard ~= '-' then
	local rev = redis.call('HGET', KEYS[1], ':rev') or ''
	if '=' .. rev ~= guard then
		return 0
	end
end
local i = 2
while i <= #ARGV do
	local op, k = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
	i = i + 2
	if op == 'D' then
		redis.call('DEL', k)
	elseif op == 'H' or op == 'X' then
		local n = tonumber(ARGV[i])
		local per = op == 'H' and 2 or 1
		local args = {}
		for j = 1, n * per do
			args[j] = ARGV[i + j]
		end
		i = i + 1 + n * per
		if n > 0 then
			redis.call(op == 'H' and 'HSET' or 'HDEL', k, unpack(args))
		end
	elseif op == 'R' then
		redis.call('HINCRBY', k, ':rev', 1)
	elseif op == 'E' then
		redis.call('PEXPIRE', k, ARGV[i])
		i = i + 1
	elseif op == 'Z' then
		redis.call('ZADD', k, ARGV[i], ARGV[i + 1])
		i = i + 2
	elseif op == 'U' then
		redis.call('ZADD', k, 'XX', ARGV[i], ARGV[i + 1])
		i = i + 2
	elseif op == 'z' then
		redis.call('ZREM', k, ARGV[i])
		i = i + 1
	elseif op == 'C' then
		redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. ARGV[i])
		i = i + 1
	else
		return redis.error_reply('unknown op ' .. op)
	end
end
return 1
`

var opsSHA = func() string {
	sum := sha1.Sum([]byte(opsScript))
	return hex.EncodeToString(sum[:])
}()

// ops is one call of opsScript being built.
type ops struct {
	keys []string
	args []string
}

// newOps starts a call with no guard.
func newOps() *ops { return &ops{args: []string{"-"}} }

// guard makes the call write only if key's ":rev" is still rev. It must
// come before any op.
func (p *ops) guard(key, rev string) {
	p.keys = append(p.keys[:0], key)
	p.args[0] = "=" + rev
}

// key returns the number of key in KEYS, adding it if new.
func (p *ops) key(key string) string {
	for i, k := range p.keys {
		if k == key {
			return strconv.Itoa(i + 1)
		}
	}
	p.keys = append(p.keys, key)
	return strconv.Itoa(len(p.keys))
}

func (p *ops) op(op, key string, args ...string) {
	p.args = append(p.args, op, p.key(key))
	p.args = append(p.args, args...)
}

// hset sets fields, given as field, value pairs.
func (p *ops) hset(key string, pairs []string) {
	p.op("H", key, strconv.Itoa(len(pairs)/2))
	p.args = append(p.args, pairs...)
}

// hdel deletes fields.
func (p *ops) hdel(key string, fields []string) {
	if len(fields) == 0 {
		return
	}
	p.op("X", key, strconv.Itoa(len(fields)))
	p.args = append(p.args, fields...)
}

// empty reports whether the call writes nothing.
func (p *ops) empty() bool { return len(p.args) == 1 }

// run sends the call, followed by a WAIT for replicas when waitReplicas is
// positive, on one connection: WAIT counts the writes of its own
// connection. It reports whether the guard held.
func (s *Store) run(ctx context.Context, p *ops, waitReplicas int) (bool, error) {
	if p.empty() {
		return true, nil
	}
	client, err := s.Client()
	if err != nil {
		return false, err
	}
	ok, err := s.send(ctx, client, p, waitReplicas, true)
	if isNoScript(err) {
		ok, err = s.send(ctx, client, p, waitReplicas, false)
	}
	return ok, err
}

func isNoScript(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && re.IsNoScript()
}

// send makes the call by EVALSHA, or EVAL when the server does not know
// the script yet.
func (s *Store) send(ctx context.Context, client rueidis.Client, p *ops, waitReplicas int, bySHA bool) (bool, error) {
	var call rueidis.Completed
	if bySHA {
		call = client.B().Evalsha().Sha1(opsSHA).Numkeys(int64(len(p.keys))).Key(p.keys...).Arg(p.args...).Build()
	} else {
		call = client.B().Eval().Script(opsScript).Numkeys(int64(len(p.keys))).Key(p.keys...).Arg(p.args...).Build()
	}
	if waitReplicas <= 0 {
		n, err := client.Do(ctx, call).AsInt64()
		return n == 1, err
	}
	wait := client.B().Wait().Numreplicas(int64(waitReplicas)).Timeout(s.waitFor.Milliseconds()).Build().SetSlot(p.keys[0])
	res := client.DoMulti(ctx, call, wait)
	n, err := res[0].AsInt64()
	if err != nil {
		return false, err
	}
	if n != 1 {
		return false, nil // the guard did not hold: nothing written to wait for
	}
	got, err := res[1].AsInt64()
	if re, ok := rueidis.IsRedisErr(err); ok {
		// The master answered: it is up and has the write; only whether
		// a replica has it is unknown.
		return true, errWaitFailed{err: re}
	}
	if err != nil {
		// The connection failed after the write's answer: the master may
		// be going down, and the write with it. Not known to stand.
		return true, err
	}
	if got < int64(waitReplicas) {
		return true, errNotReplicated{got: got, want: waitReplicas}
	}
	return true, nil
}

// errWaitFailed is a write made on the master whose WAIT the master
// answered with an error: it refused it (a user whose ACL lacks +wait).
// It is store.ErrUnreplicated like a write too few replicas acknowledged:
// the caller must hand out where the write left the session, or a
// renewal would log the device out.
type errWaitFailed struct{ err *rueidis.RedisError }

func (e errWaitFailed) Is(target error) bool { return target == store.ErrUnreplicated }

func (e errWaitFailed) Unwrap() error { return e.err }

func (e errWaitFailed) Error() string {
	msg := "the write is made, but the WAIT for the replicas wait_replicas asks for failed: " + e.err.Error()
	if strings.HasPrefix(e.err.Error(), "NOPERM") {
		msg += "; allow WAIT to the store's Redis user (+wait), or drop wait_replicas"
	}
	return msg + "; a failover could undo the write"
}

// errNotReplicated is a write that fewer replicas than asked for
// acknowledged in time: it is on the master, but a failover now could lose
// it.
type errNotReplicated struct {
	got  int64
	want int
}

// Is makes the error store.ErrUnreplicated: the write was made.
func (e errNotReplicated) Is(target error) bool { return target == store.ErrUnreplicated }

func (e errNotReplicated) Error() string {
	return "the write reached " + strconv.FormatInt(e.got, 10) + " of the " + strconv.Itoa(e.want) +
		" replicas wait_replicas asks for in time: a failover could undo it"
}
