package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// canary is a loopback TCP server that accepts connections and never
// answers. A kustomization that lists http://<canary>/policy.yaml as a
// resource (with parameter allow-remote=true) makes kustomize's HTTP loader,
// an http.Client without a timeout, wait for a response that never comes:
// the generation cannot finish, however fast or idle the machine, until a
// deadline ends it. The canary records what it accepted and holds every
// connection until the test ends.
type canary struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	requests []string // the request line of each connection, once read
	hungUp   int      // connections the client closed
	stopped  bool
}

func newCanary(t *testing.T) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	go c.accept()
	t.Cleanup(c.stop)
	return c
}

// url is an address on the canary.
func (c *canary) url(path string) string {
	return "http://" + c.ln.Addr().String() + "/" + path
}

func (c *canary) accept() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			conn.Close()
			return
		}
		c.conns = append(c.conns, conn)
		c.mu.Unlock()
		go c.hold(conn)
	}
}

// hold reads the request line, then reads and discards until the client
// goes away; it never writes a byte.
func (c *canary) hold(conn net.Conn) {
	r := bufio.NewReader(conn)
	line, _ := r.ReadString('\n')
	c.mu.Lock()
	c.requests = append(c.requests, strings.TrimSpace(line))
	c.mu.Unlock()
	_, _ = io.Copy(io.Discard, r)
	c.mu.Lock()
	c.hungUp++
	c.mu.Unlock()
}

func (c *canary) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.ln.Close()
	for _, conn := range c.conns {
		conn.Close()
	}
}

// canaryState is what the canary has seen so far.
type canaryState struct {
	accepted int
	requests []string
	hungUp   int
}

func (c *canary) state() canaryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return canaryState{accepted: len(c.conns), requests: append([]string(nil), c.requests...), hungUp: c.hungUp}
}

// waitFor polls until cond holds for the canary's state and returns that
// state, or returns the last state after 10 s. It waits for something that
// has already happened on the other side of a socket (a request sent, a
// process killed) to reach this process, never for work to get done.
func (c *canary) waitFor(cond func(canaryState) bool) canaryState {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.state()
		if cond(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}
