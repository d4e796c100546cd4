// Package deploy holds what runs the chat as a cluster: the nginx configuration templates
// (nginx/), the Docker files at the repository root, and the scripts. It renders the nginx
// configuration for a cluster outside Docker, as scripts/cluster.sh does in shell; the
// failover tests use it, and its own tests check both renderings against a real nginx.
package deploy

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

//go:embed nginx/nginx.conf.template nginx/templates/chat.conf.template
var templates embed.FS

// Nginx describes an nginx in front of local instances.
type Nginx struct {
	// Prefix is the directory nginx runs in: its configuration, pid file, logs and temporary
	// files all stay there.
	Prefix string
	// Listen is the address nginx serves on, host:port.
	Listen string
	// Upstreams are the instances' addresses, host:port.
	Upstreams []string
	// User is the "user group" the workers run as when nginx starts as root; WorkerUser
	// finds one that exists. Ignored when not root.
	User string
	// Daemon makes nginx detach; the tests keep it in the foreground to own the process.
	Daemon bool
	// Workers is the number of worker processes; 0 is nginx's "auto", one per CPU it sees
	// (which in a container may be far more than it may use).
	Workers int
}

// UpstreamServers renders the server lines of the upstream block: each instance once as a
// server that a refused connection counts down for 5 s, then once more as a backup that is
// never counted down, for when nginx counts every server down (chat.conf.template says why).
func UpstreamServers(addrs []string) string {
	lines := make([]string, 0, 2*len(addrs))
	for _, a := range addrs {
		lines = append(lines, "server "+a+" max_fails=1 fail_timeout=5s;")
	}
	for _, a := range addrs {
		lines = append(lines, "server "+a+" backup max_fails=0;")
	}
	return strings.Join(lines, "\n    ")
}

// Render returns nginx.conf and chat.conf.
func (n Nginx) Render() (mainConf, chatConf string, err error) {
	if n.Prefix == "" || n.Listen == "" || len(n.Upstreams) == 0 {
		return "", "", errors.New("nginx: prefix, listen address and upstreams are required")
	}
	m, err := templates.ReadFile("nginx/nginx.conf.template")
	if err != nil {
		return "", "", err
	}
	c, err := templates.ReadFile("nginx/templates/chat.conf.template")
	if err != nil {
		return "", "", err
	}
	userLine := ""
	if n.User != "" && os.Geteuid() == 0 {
		userLine = "user " + n.User + ";"
	}
	daemon := "off"
	if n.Daemon {
		daemon = "on"
	}
	workers := "auto"
	if n.Workers > 0 {
		workers = strconv.Itoa(n.Workers)
	}
	mainConf = strings.NewReplacer(
		"${NGINX_PREFIX}", n.Prefix,
		"${NGINX_WORKERS}", workers,
		"${NGINX_USER}", userLine,
		"${NGINX_DAEMON}", daemon,
	).Replace(string(m))
	chatConf = strings.NewReplacer(
		"${CHAT_LISTEN}", n.Listen,
		"${CHAT_UPSTREAM_SERVERS}", UpstreamServers(n.Upstreams),
	).Replace(string(c))
	return mainConf, chatConf, nil
}

// Write renders the configuration into Prefix and makes the directories nginx needs.
func (n Nginx) Write() error {
	mainConf, chatConf, err := n.Render()
	if err != nil {
		return err
	}
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(n.Prefix, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.Prefix, "nginx.conf"), []byte(mainConf), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Prefix, "chat.conf"), []byte(chatConf), 0o644)
}

// Args are nginx's command-line arguments for this configuration (add "-t" to check it).
func (n Nginx) Args() []string {
	return []string{"-p", n.Prefix, "-c", filepath.Join(n.Prefix, "nginx.conf"), "-e", filepath.Join(n.Prefix, "error.log")}
}

// WorkerUser returns a user and group that exist for nginx's workers when it runs as root:
// nobody and nobody's own group.
func WorkerUser() (string, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return "", fmt.Errorf("nginx workers: %w", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", fmt.Errorf("nginx workers: group of nobody: %w", err)
	}
	return u.Username + " " + g.Name, nil
}

// NginxBinary finds nginx on PATH or in /usr/sbin (not on a normal user's PATH).
func NginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nginx not found; install it with: apt-get install -y nginx")
}
