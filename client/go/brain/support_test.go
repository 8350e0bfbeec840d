package brain_test

// Test support: the real brain-server on a free port, and a TCP proxy that can
// cut, refuse or stall connections to it.
//
// The server binary is $BRAIN_SERVER_BIN when set, else
// <target>/debug/brain-server (built with cargo when it is missing).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"example.invalid/brain/client/go/brain"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func repoRoot() string {
	wd, err := os.Getwd() // <repo>/client/go/brain
	if err != nil {
		panic(err)
	}
	return filepath.Clean(filepath.Join(wd, "../../.."))
}

func sunsetPNG() []byte {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "client/testdata/sunset.png"))
	if err != nil {
		panic(err)
	}
	return data
}

func serverBinary() (string, error) {
	if explicit := os.Getenv("BRAIN_SERVER_BIN"); explicit != "" {
		return explicit, nil
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join(repoRoot(), "target")
	}
	binary := filepath.Join(target, "debug", "brain-server")
	if _, err := os.Stat(binary); err != nil {
		build := exec.Command("cargo", "build", "-p", "brain-server", "--manifest-path", filepath.Join(repoRoot(), "Cargo.toml"))
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return "", fmt.Errorf("cargo build -p brain-server: %w", err)
		}
	}
	return binary, nil
}

// serverEnv is the environment without BRAIN_* variables: the server reads
// those as settings and refuses unknown ones (BRAIN_ADDR, BRAIN_API_KEY and
// BRAIN_SERVER_BIN are the client's); the tests pass everything as flags.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRAIN_") {
			env = append(env, kv)
		}
	}
	return env
}

const (
	// testTenant is the tenant of brainServer.apiKey.
	testTenant = "client-tests"
	// purgeTenant is the tenant of brainServer.purgeKey, there to be purged.
	purgeTenant = "client-tests-purge"
)

// createKey runs `brain-server keys create <args>` and returns the key it prints.
func createKey(binary, databaseURL string, args ...string) (string, error) {
	keys := exec.Command(binary, append(append([]string{"keys", "create"}, args...), "--database-url", databaseURL)...)
	keys.Env = serverEnv()
	var stderr strings.Builder
	keys.Stderr = &stderr
	out, err := keys.Output()
	if err != nil {
		return "", fmt.Errorf("keys create: %w: %s", err, stderr.String())
	}
	key := strings.TrimSpace(string(out))
	if !strings.HasPrefix(key, "brk_") {
		return "", fmt.Errorf("unexpected key %q", key)
	}
	return key, nil
}

// brainServer is a running brain-server with an API key of testTenant (apiKey),
// an admin key (adminKey) and an API key of purgeTenant (purgeKey).
type brainServer struct {
	addr     string
	apiKey   string
	adminKey string
	purgeKey string
	cmd      *exec.Cmd
	exited   chan struct{}
	dir      string
}

func startServer() (*brainServer, error) {
	binary, err := serverBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "brain-go-")
	if err != nil {
		return nil, err
	}
	databaseURL := "sqlite://" + filepath.Join(dir, "brain.db")
	apiKey, err := createKey(binary, databaseURL, "--tenant", testTenant)
	if err != nil {
		return nil, err
	}
	adminKey, err := createKey(binary, databaseURL, "--admin")
	if err != nil {
		return nil, err
	}
	purgeKey, err := createKey(binary, databaseURL, "--tenant", purgeTenant)
	if err != nil {
		return nil, err
	}
	readyFile := filepath.Join(dir, "ready.json")
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(binary, "--listen-addr", "127.0.0.1:0", "--metrics-addr", "off",
		"--database-url", databaseURL, "--ready-file", readyFile)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	server := &brainServer{apiKey: apiKey, adminKey: adminKey, purgeKey: purgeKey, cmd: cmd, exited: exited, dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for server.addr == "" {
		var ready struct {
			GrpcAddr string `json:"grpc_addr"`
		}
		if raw, err := os.ReadFile(readyFile); err == nil && json.Unmarshal(raw, &ready) == nil && ready.GrpcAddr != "" {
			server.addr = ready.GrpcAddr
			break
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("brain-server exited before it was ready:\n%s", server.log())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("brain-server not ready after 30 s:\n%s", server.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	probe, err := brain.New(server.addr, brain.WithTimeout(time.Second))
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	for {
		if status, err := probe.Health(context.Background()); err == nil && status == healthpb.HealthCheckResponse_SERVING {
			return server, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("brain-server not SERVING after 30 s:\n%s", server.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *brainServer) log() string {
	raw, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(raw)
}

func (s *brainServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

// proxy is a loopback TCP proxy in front of the server, to break connections on purpose.
type proxy struct {
	addr     string
	upstream string
	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]struct{}
	stalled  bool
}

func startProxy(upstream string) (*proxy, error) {
	p := &proxy{upstream: upstream, conns: map[net.Conn]struct{}{}}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	p.addr = p.listener.Addr().String()
	return p, nil
}

func (p *proxy) listen(addr string) error {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.listener = listener
	p.mu.Unlock()
	go func() {
		for {
			inbound, err := listener.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[inbound] = struct{}{}
			stalled := p.stalled
			p.mu.Unlock()
			if stalled {
				continue // hold the connection open and never answer
			}
			outbound, err := net.Dial("tcp", p.upstream)
			if err != nil {
				_ = inbound.Close()
				continue
			}
			p.mu.Lock()
			p.conns[outbound] = struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(outbound, inbound); _ = outbound.Close(); _ = inbound.Close() }()
			go func() { _, _ = io.Copy(inbound, outbound); _ = inbound.Close(); _ = outbound.Close() }()
		}
	}()
	return nil
}

// cut drops every open connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for conn := range p.conns {
		_ = conn.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// refuse stops listening and cuts open connections: new connections are refused.
func (p *proxy) refuse() {
	p.mu.Lock()
	if p.listener != nil {
		_ = p.listener.Close()
		p.listener = nil
	}
	p.mu.Unlock()
	p.cut()
}

// restore listens again on the same address.
func (p *proxy) restore() error {
	var err error
	for range 50 {
		if err = p.listen(p.addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// stall makes new connections be accepted but never answered.
func (p *proxy) stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}
