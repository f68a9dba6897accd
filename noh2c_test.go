package caddysession

import (
	"net/http"
	"reflect"
	"testing"
)

func TestNoH2C(t *testing.T) {
	tests := []struct {
		name     string
		in, want http.Header
	}{
		{"no upgrade", http.Header{"Accept": {"*/*"}}, http.Header{"Accept": {"*/*"}}},
		{"a websocket", http.Header{"Upgrade": {"websocket"}}, http.Header{"Upgrade": {"websocket"}}},
		{"h2c", http.Header{"Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABk"}}, http.Header{}},
		{"in another case", http.Header{"Upgrade": {" H2C "}}, http.Header{}},
		{"beside another protocol", http.Header{"Upgrade": {"websocket, h2c"}, "Http2-Settings": {"AAMAAABk"}}, http.Header{"Upgrade": {"websocket"}}},
		{"in a second field", http.Header{"Upgrade": {"foo/1", "h2c"}}, http.Header{"Upgrade": {"foo/1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			noH2C(h)
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("noH2C(%v) left %v, want %v", tt.in, h, tt.want)
			}
		})
	}
}
