package dashboard

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"gantry/internal/peertest"
	"gantry/internal/server"
)

func TestCertificateExpiryMetricAndStatus(t *testing.T) {
	g := startGantry(t, setup{tls: true})
	c := client()
	peertest.WaitFor(t, 20*time.Second, "the internal certificate for localhost", func() bool { return g.srv.Certs().HasCert("localhost") })

	_, body := do(t, c, "GET", g.admin+"/metrics", nil, nil)
	m := regexp.MustCompile(`gantry_tls_cert_expiry_seconds\{name="localhost",source="internal"\} (\S+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no expiry gauge for localhost:\n%s", body)
	}
	// The internal CA's leaves live a day.
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 23*3600 || v > 24*3600+60 {
		t.Errorf("expiry gauge %s, want about a day", m[1])
	}

	var st server.Status
	getJSON(t, c, g.admin+"/api/status", &st)
	if len(st.Certificates) != 1 || st.Certificates[0].Name != "localhost" || st.Certificates[0].Issuer == "" || st.Certificates[0].NotAfter.IsZero() {
		t.Errorf("/api/status certificates %+v", st.Certificates)
	}
}
