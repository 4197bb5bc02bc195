package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"gantry/internal/ban"
)

// banRequest is the body of POST /api/bans.
type banRequest struct {
	Action   string `json:"action"` // "ban" or "unban"
	Source   string `json:"source"` // an address or a unit ("2001:db8::/64")
	Duration string `json:"duration,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (d *Dashboard) bansAPI(w http.ResponseWriter, r *http.Request) {
	if d.opts.Bans == nil {
		writeJSON(w, http.StatusOK, map[string]any{"enabled": false, "bans": []ban.Entry{}})
		return
	}
	if r.URL.Query().Get("own") == "1" {
		// what a peer importing from this node reads ([telescope.ban] import)
		list, more := d.opts.Bans.Shared()
		writeJSON(w, http.StatusOK, map[string]any{"enabled": true, "bans": list, "more": more})
		return
	}
	list, st := d.opts.Bans.Snapshot(500)
	writeJSON(w, http.StatusOK, map[string]any{"enabled": true, "bans": list, "stats": st})
}

// banChange bans or unbans a source by hand. The body is JSON, so a browser can
// send it cross-site only after a CORS preflight gantry never grants; the CSRF
// check of every POST applies besides.
func (d *Dashboard) banChange(w http.ResponseWriter, r *http.Request) {
	if d.opts.Bans == nil {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "bans are off: set [telescope.ban] enabled = true"})
		return
	}
	var req banRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "want a JSON body {\"action\": \"ban\"|\"unban\", \"source\": ADDRESS, \"duration\": \"1h\", \"reason\": TEXT}: " + err.Error()})
		return
	}
	src := remoteIP(r).String()
	switch req.Action {
	case "ban":
		var dur time.Duration
		if req.Duration != "" {
			v, err := time.ParseDuration(req.Duration)
			if err != nil || v < time.Second || v > 365*24*time.Hour {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "duration " + req.Duration + ": want a Go duration between 1s and a year, like \"1h\""})
				return
			}
			dur = v
		}
		if len(req.Reason) > 256 {
			req.Reason = req.Reason[:256]
		}
		e, err := d.opts.Bans.Ban(req.Source, req.Reason, dur)
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, ban.ErrNever) {
				code = http.StatusUnprocessableEntity
			}
			writeJSON(w, code, map[string]any{"error": err.Error()})
			return
		}
		d.log.Info("admin: source banned by hand", "source", e.Source, "by", src)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "ban": e})
	case "unban":
		found, err := d.opts.Bans.Unban(req.Source)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
			return
		}
		if !found {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "no ban for " + req.Source})
			return
		}
		d.log.Info("admin: source unbanned", "source", req.Source, "by", src)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "action " + req.Action + ": want \"ban\" or \"unban\""})
	}
}
