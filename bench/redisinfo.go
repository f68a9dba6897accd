package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// What redis-server says about itself, through INFO. The bench speaks the
// few bytes of RESP this needs itself rather than importing a Redis
// client: the store's client may change, the bench's questions do not.

// redisInfo returns the "field:value" lines of one INFO section.
func redisInfo(addr, section string) (map[string]string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "INFO %s\r\n", section); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		return nil, fmt.Errorf("redis INFO %s: unexpected reply %q", section, head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("redis INFO %s: unexpected reply %q", section, head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if name, value, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			fields[name] = value
		}
	}
	return fields, nil
}

// commandCalls are the calls of each command since Redis started, by
// name, from INFO commandstats. Commands that a Lua script runs are
// counted under their own names, beside the EVAL or EVALSHA that ran them.
type commandCalls map[string]int64

func redisCommandCalls(addr string) (commandCalls, error) {
	info, err := redisInfo(addr, "commandstats")
	if err != nil {
		return nil, err
	}
	return parseCommandStats(info)
}

// parseCommandStats reads lines such as
// "cmdstat_hgetall:calls=12,usec=40,usec_per_call=3.33,rejected_calls=0,failed_calls=0".
func parseCommandStats(info map[string]string) (commandCalls, error) {
	calls := commandCalls{}
	for name, value := range info {
		cmd, ok := strings.CutPrefix(name, "cmdstat_")
		if !ok {
			continue
		}
		found := false
		for _, kv := range strings.Split(value, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redis commandstats: %s: bad calls %q", cmd, v)
				}
				calls[cmd], found = n, true
			}
		}
		if !found {
			return nil, fmt.Errorf("redis commandstats: %s has no calls field: %q", cmd, value)
		}
	}
	return calls, nil
}

// since returns the calls made after before was read, by command. The
// INFO that read before is one of them, and is left out: it is the
// bench's, not the store's.
func (c commandCalls) since(before commandCalls) commandCalls {
	d := commandCalls{}
	for cmd, n := range c {
		if n -= before[cmd]; cmd == "info" {
			n--
		}
		if n > 0 {
			d[cmd] = n
		}
	}
	return d
}

func (c commandCalls) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// redisUsedMemory is INFO memory's used_memory: the bytes Redis's
// allocator holds for data and its own structures.
func redisUsedMemory(addr string) (int64, error) {
	info, err := redisInfo(addr, "memory")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(info["used_memory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis INFO memory: bad used_memory %q", info["used_memory"])
	}
	return n, nil
}

// redisKeys is the number of keys in every database, from INFO keyspace
// ("db0:keys=12,expires=12,avg_ttl=0").
func redisKeys(addr string) (int64, error) {
	info, err := redisInfo(addr, "keyspace")
	if err != nil {
		return 0, err
	}
	var total int64
	for name, value := range info {
		if !strings.HasPrefix(name, "db") {
			continue
		}
		rest, ok := strings.CutPrefix(value, "keys=")
		keys, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(keys, 10, 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("redis INFO keyspace: bad %s %q", name, value)
		}
		total += n
	}
	return total, nil
}
