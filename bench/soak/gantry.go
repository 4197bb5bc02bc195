package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gantry is the server under test.
type gantry struct {
	site *site
	pid  int
	log  string

	reloadMu sync.Mutex // one reload at a time; the config file is shared
	current  string     // "A", "B": the config last loaded
}

var admin = &http.Client{Timeout: 10 * time.Second}

type status struct {
	LastReload struct {
		Time  time.Time `json:"time"`
		OK    bool      `json:"ok"`
		Error string    `json:"error"`
	} `json:"last_reload"`
	Pools []struct {
		Route   string `json:"route"`
		Kind    string `json:"kind"`
		Workers []struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"workers"`
	} `json:"pools"`
}

func (g *gantry) status() (*status, error) {
	resp, err := admin.Get(fmt.Sprintf("http://127.0.0.1:%d/api/status", g.site.admin))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/api/status: %s", resp.Status)
	}
	var st status
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

func (g *gantry) waitUp(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/1k.bin", g.site.port))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				g.current = "A"
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("no answer on the listener")
}

// reload writes config name ("A", "B" or "wrong") and sends SIGHUP, and waits for
// gantry to report the reload's result; it returns that result.
func (g *gantry) reload(name string) (ok bool, err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	text := map[string]string{"A": g.site.configA, "B": g.site.configB, "wrong": g.site.wrong}[name]
	before, err := g.status()
	if err != nil {
		return false, err
	}
	tmp := g.site.config + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, g.site.config); err != nil {
		return false, err
	}
	if err := syscall.Kill(g.pid, syscall.SIGHUP); err != nil {
		return false, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		st, err := g.status()
		if err != nil {
			continue
		}
		if st.LastReload.Time.After(before.LastReload.Time) {
			if st.LastReload.OK {
				g.current = name
			}
			return st.LastReload.OK, nil
		}
	}
	return false, errors.New("no reload result within 60s")
}

// workers lists the worker pids of kind ("wsgi", "fastcgi") that are ready.
func (g *gantry) workers(kind string) []int {
	st, err := g.status()
	if err != nil {
		return nil
	}
	var pids []int
	for _, p := range st.Pools {
		if p.Kind != kind {
			continue
		}
		for _, w := range p.Workers {
			if w.State == "ready" {
				pids = append(pids, w.PID)
			}
		}
	}
	return pids
}

type sample struct {
	at         time.Duration
	rssKB      int64
	fds        int
	goroutines int
	threads    int
	zombies    int
	bodyFiles  int
}

// quietSample stops the load and the faults, lets gantry settle on config A with
// every worker ready, and measures it, so that samples compare like with like.
func (g *gantry) quietSample(gate *sync.RWMutex, t *tally, at time.Duration) sample {
	stopped := time.Now()
	gate.Lock()
	defer func() {
		gate.Unlock()
		t.pause(time.Since(stopped))
	}()
	if g.current != "A" {
		if ok, err := g.reload("A"); !ok || err != nil {
			t.note("sample at %s: reload to config A: ok=%v err=%v", at, ok, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(g.workers("wsgi")) == 2 && len(g.workers("fastcgi")) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	closeIdle()
	time.Sleep(2 * time.Second) // closed connections and finished processes are reaped
	s := sample{at: at}
	proc := fmt.Sprintf("/proc/%d/", g.pid)
	if b, err := os.ReadFile(proc + "status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "VmRSS:":
				s.rssKB, _ = strconv.ParseInt(f[1], 10, 64)
			case "Threads:":
				s.threads, _ = strconv.Atoi(f[1])
			}
		}
	}
	if ents, err := os.ReadDir(proc + "fd"); err == nil {
		s.fds = len(ents)
	}
	s.goroutines = g.goroutines()
	s.zombies = zombieChildren(g.pid)
	if ents, err := os.ReadDir(filepath.Join(g.site.dir, "body")); err == nil {
		s.bodyFiles = len(ents)
	}
	return s
}

func (g *gantry) goroutines() int {
	resp, err := admin.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", g.site.admin))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n)
		}
	}
	return -1
}

// zombieChildren counts gantry's children that have exited and not been reaped.
func zombieChildren(pid int) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			n++
		}
	}
	return n
}
