package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Single requests, made one at a time outside the load generator, for
// the cases that follow one session through its life.

// visit sends GET path to site with the session cookie sid=id (none when
// id is empty), and returns the response with its body read.
func visit(c *http.Client, site, path, id string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+site+path, nil)
	if err != nil {
		return nil, "", err
	}
	if id != "" {
		req.Header.Set("Cookie", "sid="+id)
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, "", err
	}
	if res.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s%s: %s: %s", site, path, res.Status, strings.TrimSpace(string(body)))
	}
	return res, string(body), nil
}

// whoami returns the user the site forwarded to the upstream for the
// session id: "" when the site did not adopt the session.
func whoami(c *http.Client, site, id string) (string, error) {
	_, user, err := visit(c, site, "/whoami", id)
	return user, err
}

// sessionCookie returns the value of the sid cookie a response set, ""
// when it set none.
func sessionCookie(res *http.Response) string {
	for _, c := range res.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}
