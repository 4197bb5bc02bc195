package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
)

// RootPath is where the internal CA's root certificate is kept under storage:
// the file a person adds to their trust store.
func RootPath(storage string) string { return filepath.Join(storage, "ca", "root.pem") }

func rootKeyPath(storage string) string { return filepath.Join(storage, "ca", "root.key") }

// rootLifetime is long because replacing a root means every device that trusts it
// must trust the new one.
const rootLifetime = 10 * 365 * 24 * time.Hour

// localCA is gantry's own certificate authority for tls = "internal": a root made
// once and kept in storage that signs short-lived leaf certificates directly. It
// is a certmagic Issuer, so that its leaves are stored, cached, renewed and
// reported exactly as ACME ones are. There is no intermediate: the root key never
// leaves this machine anyway, and a one-link chain is what a person debugging
// trust expects to see.
type localCA struct {
	root     *x509.Certificate
	key      crypto.Signer
	lifetime time.Duration
	// allowed says whether a name may be certified: only the names of the sites
	// that use the internal CA, so that nothing else can make it sign a name.
	allowed func(name string) bool
}

// loadOrCreateCA reads the root from storage, or makes one when there is none.
func loadOrCreateCA(storage string, lifetime time.Duration, allowed func(string) bool) (*localCA, error) {
	ca := &localCA{lifetime: lifetime, allowed: allowed}
	certPEM, err := os.ReadFile(RootPath(storage))
	if errors.Is(err, fs.ErrNotExist) {
		if err := ca.create(storage); err != nil {
			return nil, err
		}
		return ca, nil
	}
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	keyPEM, err := os.ReadFile(rootKeyPath(storage))
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w (remove %s to make a new root)", err, RootPath(storage))
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("internal CA: %s holds no PEM certificate; remove it (and root.key) to make a new root", RootPath(storage))
	}
	if ca.root, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("internal CA: %s: %w", RootPath(storage), err)
	}
	if ca.key, err = certmagic.PEMDecodePrivateKey(keyPEM); err != nil {
		return nil, fmt.Errorf("internal CA: %s: %w", rootKeyPath(storage), err)
	}
	if !publicKeysEqual(ca.root.PublicKey, ca.key.Public()) {
		return nil, fmt.Errorf("internal CA: %s does not belong to %s; remove both to make a new root", rootKeyPath(storage), RootPath(storage))
	}
	if time.Now().After(ca.root.NotAfter) {
		return nil, fmt.Errorf("internal CA: the root %s expired on %s; remove it and root.key to make a new one (and trust that)", RootPath(storage), ca.root.NotAfter.Format(time.DateOnly))
	}
	return ca, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func (ca *localCA) create(storage string) error {
	dir := filepath.Dir(RootPath(storage))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	key, err := rootKey(storage)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "gantry local CA (" + host + ")", Organization: []string{"gantry"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	err = writeExclusive(RootPath(storage), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if errors.Is(err, fs.ErrExist) {
		// Another gantry sharing storage finished first, with the same key.
		other, err := loadOrCreateCA(storage, ca.lifetime, ca.allowed)
		if err != nil {
			return err
		}
		*ca = *other
		return nil
	}
	if err != nil {
		return fmt.Errorf("internal CA: %w", err)
	}
	ca.root, _ = x509.ParseCertificate(der)
	ca.key = key
	return nil
}

// rootKey is the key of a root being made. A root.key without root.pem is left
// by a start that stopped between the two (or is being made by another gantry
// sharing storage): no device can trust it yet, so it is used when it parses and
// replaced when it does not. A new key is written exclusively, so that two gantry
// starting at once end up with one.
func rootKey(storage string) (crypto.Signer, error) {
	path := rootKeyPath(storage)
	if b, err := os.ReadFile(path); err == nil {
		if k, err := certmagic.PEMDecodePrivateKey(b); err == nil {
			return k, nil
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("internal CA: %s is unreadable and cannot be removed: %w", path, err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	keyPEM, err := certmagic.PEMEncodePrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	if err := writeExclusive(path, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	return key, nil
}

func writeExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// issuerKey names the internal CA's certificates in certmagic's storage.
const issuerKey = "gantry-internal"

// IssuerKey implements certmagic.Issuer.
func (ca *localCA) IssuerKey() string { return issuerKey }

// Issue implements certmagic.Issuer: a leaf for the CSR's names, valid for the
// CA's leaf lifetime, signed by the root.
func (ca *localCA) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	names := slices.Clone(csr.DNSNames)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 || len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, errors.New("internal CA: a request must name hosts and only hosts")
	}
	for _, n := range names {
		if !ca.allowed(n) {
			return nil, fmt.Errorf("internal CA: %q is not a host of a site with tls = \"internal\"", n)
		}
	}
	now := time.Now()
	notAfter := now.Add(ca.lifetime)
	if notAfter.After(ca.root.NotAfter) {
		notAfter = ca.root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     csr.DNSNames,
		IPAddresses:  slices.Clone(csr.IPAddresses),
		// A minute back, for a client whose clock is a little behind.
		NotBefore:   now.Add(-time.Minute),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.root, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("internal CA: %w", err)
	}
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	return &certmagic.IssuedCertificate{Certificate: buf.Bytes()}, nil
}

// ipName is host as certmagic names it: an IP address without brackets.
func ipName(host string) string {
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		if ip := net.ParseIP(host[1 : len(host)-1]); ip != nil {
			return ip.String()
		}
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return host
}
