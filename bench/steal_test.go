package main

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestStealNote(t *testing.T) {
	turn := func(name string, requests int, c cpuTime) *outcome {
		return &outcome{variant: variant{name: name}, total: result{requests: requests, elapsed: time.Second}, cpu: c}
	}
	tests := []struct {
		name string
		all  []*outcome
		want []string // in the note; none: no note
	}{
		{"nothing counted", []*outcome{turn("Caddy reverse_proxy", 100, cpuTime{}), turn("Caddy session (bolt)", 90, cpuTime{})}, nil},
		{"steal on the session's turns", []*outcome{
			turn("Caddy reverse_proxy", 100, cpuTime{total: 1000}),
			turn("Caddy session (bolt)", 81, cpuTime{total: 1000, stolen: 100}),
		}, []string{"Caddy reverse_proxy 0.0%", "Caddy session (bolt) 10.0%", "Caddy session (bolt) 0.900"}},
		{"idle on the session's turns", []*outcome{
			turn("Caddy reverse_proxy", 100, cpuTime{total: 1000, idle: 20}),
			turn("Caddy session (bolt)", 90, cpuTime{total: 1000, idle: 80}),
		}, []string{"sat idle", "Caddy reverse_proxy 2.0% (busy 98000 µs a request)", "Caddy session (bolt) 8.0% (busy 102222 µs a request)",
			"over each variant's (what the throughput ratio would be with the CPU all the server's, neither stolen nor idle): Caddy session (bolt) 0.959"}},
		{"each server against its own plain proxy", []*outcome{
			turn("Caddy reverse_proxy", 100, cpuTime{total: 1000, stolen: 50}),
			turn("Apache mod_proxy", 200, cpuTime{total: 1000}),
			turn("Apache mod_session_dbd", 100, cpuTime{total: 1000, stolen: 500}),
		}, []string{"Caddy reverse_proxy 5.0%", "Apache mod_session_dbd 1.000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			note := stealNote(tt.all)
			if len(tt.want) == 0 {
				if note != "" {
					t.Fatalf("a note without any time counted: %q", note)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(note, w) {
					t.Errorf("the note lacks %q: %q", w, note)
				}
			}
		})
	}
}

func TestReadCPUTime(t *testing.T) {
	if _, ok := readCPUTime(-1); ok {
		t.Fatal("a time for no CPU")
	}
	if runtime.GOOS != "linux" {
		t.Skip("/proc/stat is Linux's")
	}
	a, ok := readCPUTime(0)
	if !ok || a.total == 0 {
		t.Fatalf("no time for CPU 0: %+v, %v", a, ok)
	}
	if a.stolen > a.total || a.idle > a.total {
		t.Fatalf("more stolen or idle than counted: %+v", a)
	}
}
