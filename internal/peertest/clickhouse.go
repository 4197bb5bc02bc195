package peertest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ClickHouse is a private clickhouse-server a test runs.
type ClickHouse struct {
	// URL is its HTTP interface, "http://127.0.0.1:PORT".
	URL string
	// User and Password are an account besides "default" (which has no password),
	// for tests of authentication.
	User, Password string

	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

// StartClickHouse runs a real clickhouse-server with its own config.xml and
// users.xml in a temp dir, on free loopback ports, stopped at the end of the test.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	bin := Binary(t, "clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")
	dir := t.TempDir()
	httpPort, tcpPort := FreePort(t), FreePort(t)
	conf := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/server.log</log><errorlog>%[1]s/error.log</errorlog></logger>
  <http_port>%[2]d</http_port>
  <tcp_port>%[3]d</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`, dir, httpPort, tcpPort)
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <writer><password>wr1ter-s3cret</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></writer>
  </users>
  <quotas><default></default></quotas>
</yandex>
`
	for name, text := range map[string]string{"config.xml": conf, "users.xml": users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch := &ClickHouse{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), User: "writer", Password: "wr1ter-s3cret", dir: dir}
	ch.start(t, bin)
	return ch
}

func (ch *ClickHouse) start(t testing.TB, bin string) {
	t.Helper()
	out, err := os.Create(filepath.Join(ch.dir, "stdout.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "--config-file="+filepath.Join(ch.dir, "config.xml"))
	cmd.Dir, cmd.Stdout, cmd.Stderr = ch.dir, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting clickhouse-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	ch.cmd, ch.exited = cmd, exited
	t.Cleanup(ch.Stop)
	WaitFor(t, 30*time.Second, "clickhouse-server to answer "+ch.URL+"/ping", func() bool {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(ch.dir, "error.log"))
			so, _ := os.ReadFile(filepath.Join(ch.dir, "stdout.log"))
			t.Fatalf("clickhouse-server exited at start:\n%s\n%s", so, log)
		default:
		}
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get(ch.URL + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop kills the server (the test's cleanup does too); its data stay for Restart.
func (ch *ClickHouse) Stop() {
	if ch.cmd == nil {
		return
	}
	// SIGTERM makes it wait about ten seconds for clients; an INSERT that was
	// answered is on disk, so nothing a test reads is lost by SIGKILL.
	syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGKILL)
	<-ch.exited
	ch.cmd = nil
}

// Restart starts the stopped server again on the same ports and data.
func (ch *ClickHouse) Restart(t testing.TB) {
	t.Helper()
	ch.start(t, Binary(t, "clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"))
}

// Query runs one statement as the default user and returns its output (TSV unless
// the statement says otherwise), failing t on an error.
func (ch *ClickHouse) Query(t testing.TB, sql string) string {
	t.Helper()
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(ch.URL+"/", "text/plain", strings.NewReader(sql))
	if err != nil {
		t.Fatalf("clickhouse query %q: %v", sql, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatalf("clickhouse query %q: %v", sql, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clickhouse query %q: %s: %s", sql, resp.Status, b.String())
	}
	return b.String()
}
