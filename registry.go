package caddysession

import (
	"slices"
	"sort"
	"sync"
)

// handlers lists the session handlers of the loaded configs, in the order
// they were provisioned, for the parts of the plugin that are not in the
// request's route: the admin API (which needs the stores) and the session
// matcher (which needs a handler's cookie, store and timeouts). During a
// reload the old and the new config's handlers are both listed for a
// moment; the newest comes last.
var handlers struct {
	sync.Mutex
	list []*Handler
}

func registerHandler(h *Handler) {
	handlers.Lock()
	defer handlers.Unlock()
	handlers.list = append(handlers.list, h)
}

func unregisterHandler(h *Handler) {
	handlers.Lock()
	defer handlers.Unlock()
	handlers.list = slices.DeleteFunc(handlers.list, func(x *Handler) bool { return x == h })
}

// handlerForCookie returns the newest handler whose session cookie has
// this name, or nil.
func handlerForCookie(name string) *Handler {
	handlers.Lock()
	defer handlers.Unlock()
	for i := len(handlers.list) - 1; i >= 0; i-- {
		if h := handlers.list[i]; h.cookie.Name == name {
			return h
		}
	}
	return nil
}

// liveStores returns one handler per distinct store, the newest, sorted by
// store name.
func liveStores() []*Handler {
	handlers.Lock()
	defer handlers.Unlock()
	byName := map[string]*Handler{}
	for _, h := range handlers.list {
		byName[h.storeName] = h
	}
	out := make([]*Handler, 0, len(byName))
	for _, h := range byName {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].storeName < out[j].storeName })
	return out
}
