package systemd

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestJournalHandler(t *testing.T) {
	cases := []struct {
		name  string
		level slog.Level
		want  string
	}{
		{"error", slog.LevelError, "<3>msg=boom k=v\n"},
		{"above error", slog.LevelError + 4, "<3>msg=boom k=v\n"},
		{"warning", slog.LevelWarn, "<4>msg=boom k=v\n"},
		{"info", slog.LevelInfo, "<6>msg=boom k=v\n"},
		{"debug", slog.LevelDebug, "<7>msg=boom k=v\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			log := slog.New(NewJournalHandler(&b, slog.LevelDebug))
			log.Log(t.Context(), tc.level, "boom", "k", "v")
			if b.String() != tc.want {
				t.Errorf("got %q, want %q (no timestamp: the journal has one)", b.String(), tc.want)
			}
		})
	}
	var b bytes.Buffer
	slog.New(NewJournalHandler(&b, slog.LevelInfo)).With("site", "a").WithGroup("g").Info("two\nlines", "k", 1)
	if want := "<6>msg=\"two\\nlines\" site=a g.k=1\n"; b.String() != want {
		t.Errorf("got %q, want %q: one record, one journal line", b.String(), want)
	}
}

func TestJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	for _, tc := range []struct {
		name, env string
		want      bool
	}{
		{"not under systemd", "", false},
		{"this file", fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		// stderr redirected by the user to a file: keep the plain format
		{"another file", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"garbage", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tc.env)
			if got := JournalStream(f); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
