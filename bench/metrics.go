package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// counters are the session metrics of one Caddy, by series, as exposed on
// its admin endpoint's /metrics, for example
// `caddy_session_store_operation_duration_seconds_count{operation="update",store="bolt"}`.
type counters map[string]float64

func scrape(admin string) (counters, error) {
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	c := counters{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "caddy_session_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		c[line[:i]] = v
	}
	return c, sc.Err()
}

// opSeries names the counter of a store operation.
func opSeries(op, backend string) string {
	return fmt.Sprintf(`caddy_session_store_operation_duration_seconds_count{operation=%q,store=%q}`, op, backend)
}

func createdSeries(backend string) string {
	return fmt.Sprintf(`caddy_session_created_total{store=%q}`, backend)
}

// delta is what the counters of after gained over before.
func delta(before, after counters, series string) float64 {
	return after[series] - before[series]
}

// gauge reads one series without labels from a Caddy's /metrics, such as
// go_sched_gomaxprocs_threads.
func gauge(admin, name string) (float64, error) {
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}
