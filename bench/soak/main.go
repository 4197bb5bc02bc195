// Command soak drives a running gantry for a long time with every kind of
// traffic it serves, while faults hit it, and reports what went wrong: requests
// by outcome, every failure classified as expected (a request in flight on a
// worker the fault loop killed, a backend made to hang) or a defect, checksum
// mismatches of the bodies the apps verify, and gantry's memory, descriptors,
// goroutines, threads, zombie children and temp files over time.
//
// bench/soak.sh builds gantry and runs it: bench/soak.sh -d 2m.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	dur := flag.Duration("d", time.Hour, "how long to run the load")
	bin := flag.String("gantry", "gantry", "the gantry binary")
	every := flag.Duration("sample", time.Minute, "how often to sample gantry's resources")
	faultEvery := flag.Duration("fault", 3*time.Second, "how often the fault loop strikes")
	out := flag.String("o", "", "also write the markdown report to this file")
	keep := flag.Bool("keep", false, "keep the work directory (gantry's error log is there)")
	baseline := flag.Duration("baseline", 3*time.Minute, "measure the load this long with no faults, after a minute's warm-up, before the first fault (0: no throughput check)")
	quietEvery := flag.Duration("quiet", 10*time.Minute, "pause the faults this often (10 s to settle, then 2 minutes measured) and compare the load's rate with the baseline")
	flag.Parse()
	if *baseline > 0 && time.Minute+*baseline > *dur/2 {
		fmt.Fprintf(os.Stderr, "soak: -d %s is too short for a %s baseline after a minute's warm-up; no throughput check\n", *dur, *baseline)
		*baseline = 0
	}
	if err := run(*bin, *dur, *every, *faultEvery, *baseline, *quietEvery, *out, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
}

type finalState struct {
	leftFiles []string
	exitErr   string
	panics    int
}

func run(bin string, dur, every, faultEvery, baseline, quietEvery time.Duration, outFile string, keep bool) error {
	bin, err := exec.LookPath(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gantry-soak-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	wsl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer wsl.Close()
	go wsEcho(wsl)
	stuck, closeStuck, err := stuckUpstream()
	if err != nil {
		return err
	}
	defer closeStuck()
	s, err := newSite(dir, wsl.Addr().String(), stuck)
	if err != nil {
		return err
	}

	errLog, err := os.Create(filepath.Join(dir, "gantry.log"))
	if err != nil {
		return err
	}
	defer errLog.Close()
	// A temp dir of its own: what gantry leaves there is gantry's, not another
	// program's.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(bin, "serve", "-c", s.config)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = errLog, errLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	g := &gantry{site: s, pid: cmd.Process.Pid, log: errLog.Name()}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := g.waitUp(30 * time.Second); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("gantry did not start: %w\n%s", err, tail(errLog.Name()))
	}
	fmt.Fprintf(os.Stderr, "soak: gantry pid %d on 127.0.0.1:%d, admin :%d, for %s (work dir %s)\n", g.pid, s.port, s.admin, dur, dir)

	t := newTally()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	gate := &sync.RWMutex{}
	var wg sync.WaitGroup
	start := time.Now()
	for _, d := range drivers(g, t) {
		for range d.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					gate.RLock()
					d.once(ctx)
					gate.RUnlock()
				}
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		faults(ctx, g, t, gate, faultEvery, baseline, quietEvery, start)
	}()
	ticker := time.NewTicker(every)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-ticker.C:
			t.mu.Lock()
			n := len(t.samples)
			t.mu.Unlock()
			if time.Since(start)+every/2 > dur && n > 0 {
				continue // the last sample is taken after the load
			}
			smp := g.quietSample(gate, t, time.Since(start))
			t.mu.Lock()
			t.samples = append(t.samples, smp)
			t.mu.Unlock()
			fmt.Fprintf(os.Stderr, "soak: %.1f min: rss %d KB, fds %d, goroutines %d, threads %d, defects so far %d\n",
				smp.at.Minutes(), smp.rssKB, smp.fds, smp.goroutines, smp.threads, t.defects())
		}
	}
	ticker.Stop()
	wg.Wait()
	smp := g.quietSample(gate, t, time.Since(start))
	t.samples = append(t.samples, smp)

	var final finalState
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			final.exitErr = err.Error()
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		final.exitErr = "did not stop within 60s of SIGTERM"
		<-exited
	}
	for _, d := range []string{"body", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(dir, d))
		for _, e := range ents {
			final.leftFiles = append(final.leftFiles, filepath.Join(dir, d, e.Name()))
		}
	}
	final.panics = countLines(errLog.Name(), "panic", "DATA RACE", "fatal error")

	var b strings.Builder
	pass := t.report(&b, dur, final)
	fmt.Print(b.String())
	if outFile != "" {
		os.WriteFile(outFile, []byte(b.String()), 0o644)
	}
	if !pass {
		fmt.Fprintf(os.Stderr, "soak: FAIL; gantry's log: %s\n", errLog.Name())
		if !keep {
			fmt.Fprintln(os.Stderr, tail(errLog.Name()))
		}
		os.Exit(1)
	}
	return nil
}

func countLines(file string, words ...string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		for _, w := range words {
			if strings.Contains(sc.Text(), w) {
				n++
				break
			}
		}
	}
	return n
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
