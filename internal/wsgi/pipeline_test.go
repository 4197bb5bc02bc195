package wsgi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/supervise"
)

// With one thread and many clients, requests queue on the worker's single
// connection (inline and streamed bodies mixed); each must get its own response.
func TestQueuedRequestsKeepTheirResponses(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 1}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				size := 100 + g*1000 + i
				if i%5 == 4 {
					size = inlineBody + 1000 + g // streamed in B frames
				}
				body := bytes.Repeat([]byte{byte('a' + g)}, size)
				sum := sha256.Sum256(body)
				want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:]))
				resp, err := http.Post(s.srv.URL+"/echo", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != want {
					errs <- fmt.Errorf("client %d request %d: %d %q, want %q", g, i, resp.StatusCode, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Log(s.logs.String())
	}
}

// A request queued behind one that hangs never reached the application: when the
// hung worker is replaced, it is sent again (even a POST) instead of failing.
func TestQueuedRequestSurvivesStuckWorker(t *testing.T) {
	s := startSite(t, Options{App: "testapp:application", Processes: 1, Threads: 1, Timeout: time.Second}, nil)
	old := s.h.Workers()[0].PID
	mark := filepath.Join(t.TempDir(), "started")
	stuck := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.srv.URL + "/sleep?s=60&mark=" + url.QueryEscape(mark))
		if err != nil {
			stuck <- 0
			return
		}
		resp.Body.Close()
		stuck <- resp.StatusCode
	}()
	eventually(t, "the hanging request in the app", func() bool {
		_, err := os.Stat(mark)
		return err == nil
	})
	resp, err := http.Post(s.srv.URL+"/echo", "text/plain", strings.NewReader("queued"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if code := <-stuck; code != http.StatusGatewayTimeout {
		t.Errorf("hanging request: %d, want 504", code)
	}
	sum := sha256.Sum256([]byte("queued"))
	if want := "6 " + hex.EncodeToString(sum[:]); resp.StatusCode != 200 || string(body) != want {
		t.Errorf("queued request: %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	ws := s.h.Workers()
	if len(ws) != 1 || ws[0].PID == old || ws[0].State != supervise.StateReady {
		t.Errorf("workers after the timeout: %+v (old pid %d)", ws, old)
	}
}
