package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wschat/chat/deploy"
	"github.com/wschat/chat/internal/testdb"
)

// root is the repository root, where the Docker files live.
const root = ".."

// compose is the part of a compose file the checks read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Profiles    []string          `yaml:"profiles"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Networks any `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]any `yaml:"networks"`
	Volumes  map[string]any `yaml:"volumes"`
}

func readCompose(t *testing.T) (compose, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c, b
}

var chatInstances = []string{"chat1", "chat2", "chat3"}

func TestComposeTopology(t *testing.T) {
	c, _ := readCompose(t)
	for _, name := range append([]string{"postgres", "redis", "s3", "migrate", "nginx", "redisinsight"}, chatInstances...) {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	// Only nginx (8080) and the optional RedisInsight (5540) are reachable from the host.
	for name, s := range c.Services {
		switch name {
		case "nginx":
			if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, "8080:8080") }) {
				t.Errorf("nginx ports %v, want 8080 published", s.Ports)
			}
		case "redisinsight":
			if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, "5540:5540") }) {
				t.Errorf("redisinsight ports %v, want 5540 published", s.Ports)
			}
			if !slices.Contains(s.Profiles, "tools") {
				t.Errorf("redisinsight profiles %v, want it optional (profile tools)", s.Profiles)
			}
		default:
			if len(s.Ports) > 0 {
				t.Errorf("%s publishes %v; only nginx and redisinsight may", name, s.Ports)
			}
			if len(s.Profiles) > 0 {
				t.Errorf("%s is in profiles %v; only redisinsight is optional", name, s.Profiles)
			}
		}
	}

	healthy := func(dep string) bool {
		s := c.Services[dep]
		if s.Healthcheck != nil && len(s.Healthcheck.Test) > 0 {
			return true
		}
		// The chatd image brings its own HEALTHCHECK (Dockerfile).
		return s.Build != nil
	}
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if d.Condition == "service_healthy" && !healthy(dep) {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
	wantDeps := func(name string, want map[string]string) {
		t.Helper()
		s := c.Services[name]
		for dep, cond := range want {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, got, cond)
			}
		}
	}
	wantDeps("migrate", map[string]string{"postgres": "service_healthy"})
	if m := c.Services["migrate"]; !slices.Equal(m.Command, []string{"migrate"}) || m.Build == nil {
		t.Errorf("migrate runs %v (build %v), want chatd migrate", m.Command, m.Build)
	}
	ids := map[string]bool{}
	for _, name := range chatInstances {
		s := c.Services[name]
		wantDeps(name, map[string]string{"migrate": "service_completed_successfully", "postgres": "service_healthy", "redis": "service_healthy",
			"s3": "service_started"})
		env := s.Environment
		// Files: one bucket shared by every instance (a file uploaded through one is
		// downloadable through the others), keys from .env.
		if env["CHAT_FILES_URL"] != "s3+http://s3:7070/chat-files" || !strings.HasPrefix(env["CHAT_FILES_S3_SECRET_KEY"], "${S3_SECRET_KEY") {
			t.Errorf("%s CHAT_FILES_URL = %q, secret %q: want the s3 service's bucket with keys from .env", name, env["CHAT_FILES_URL"], env["CHAT_FILES_S3_SECRET_KEY"])
		}
		if env["CHAT_ADDR"] != "0.0.0.0:8080" {
			t.Errorf("%s CHAT_ADDR = %q", name, env["CHAT_ADDR"])
		}
		if !regexp.MustCompile(`^redis://:\$\{REDIS_PASSWORD[:?}][^@]*@redis:6379/0$`).MatchString(env["CHAT_REDIS_URL"]) {
			t.Errorf("%s CHAT_REDIS_URL = %q, want redis://:${REDIS_PASSWORD}@redis:6379/0", name, env["CHAT_REDIS_URL"])
		}
		if !regexp.MustCompile(`^postgres://chat:\$\{POSTGRES_PASSWORD[:?}].*@postgres:5432/chat`).MatchString(env["CHAT_DATABASE_URL"]) {
			t.Errorf("%s CHAT_DATABASE_URL = %q", name, env["CHAT_DATABASE_URL"])
		}
		if !strings.HasPrefix(env["CHAT_JWT_SECRET"], "${CHAT_JWT_SECRET") {
			t.Errorf("%s CHAT_JWT_SECRET = %q, want it from .env", name, env["CHAT_JWT_SECRET"])
		}
		if ids[env["CHAT_INSTANCE_ID"]] || env["CHAT_INSTANCE_ID"] == "" {
			t.Errorf("%s CHAT_INSTANCE_ID %q is empty or not unique", name, env["CHAT_INSTANCE_ID"])
		}
		ids[env["CHAT_INSTANCE_ID"]] = true
	}

	// nginx: in front of every instance, with the committed template, trusted by them.
	ng := c.Services["nginx"]
	wantDeps("nginx", map[string]string{"chat1": "service_healthy", "chat2": "service_healthy", "chat3": "service_healthy"})
	for _, name := range chatInstances {
		if !strings.Contains(ng.Environment["CHAT_UPSTREAM_SERVERS"], "server "+name+":8080 max_fails=1") {
			t.Errorf("nginx upstreams %q miss %s", ng.Environment["CHAT_UPSTREAM_SERVERS"], name)
		}
		if !strings.Contains(ng.Environment["CHAT_UPSTREAM_SERVERS"], "server "+name+":8080 backup max_fails=0;") {
			t.Errorf("nginx upstreams %q miss %s as a backup (deploy.UpstreamServers)", ng.Environment["CHAT_UPSTREAM_SERVERS"], name)
		}
	}
	if !slices.ContainsFunc(ng.Volumes, func(v string) bool { return strings.HasPrefix(v, "./deploy/nginx/templates:/etc/nginx/templates") }) {
		t.Errorf("nginx volumes %v: the template is not mounted", ng.Volumes)
	}
	nets, _ := ng.Networks.(map[string]any)
	edge, _ := nets["edge"].(map[string]any)
	if ip, _ := edge["ipv4_address"].(string); ip == "" || c.Services["chat1"].Environment["CHAT_TRUSTED_PROXIES"] != ip {
		t.Errorf("nginx address %q, instances trust %q: they must match", ip, c.Services["chat1"].Environment["CHAT_TRUSTED_PROXIES"])
	}

	// PostgreSQL keeps its data in a named volume; Redis has a password.
	pg := c.Services["postgres"]
	if !slices.ContainsFunc(pg.Volumes, func(v string) bool {
		name, path, _ := strings.Cut(v, ":")
		_, declared := c.Volumes[name]
		return declared && path == "/var/lib/postgresql/data"
	}) {
		t.Errorf("postgres volumes %v: want a named volume for /var/lib/postgresql/data", pg.Volumes)
	}
	s3 := c.Services["s3"]
	if !slices.ContainsFunc(s3.Volumes, func(v string) bool {
		name, path, _ := strings.Cut(v, ":")
		_, declared := c.Volumes[name]
		return declared && path == "/data"
	}) || s3.Environment["ROOT_SECRET_ACCESS_KEY"] != "${S3_SECRET_KEY:?set S3_SECRET_KEY in .env}" {
		t.Errorf("s3: volumes %v, secret %q; want a named volume for /data and the key from .env", s3.Volumes, s3.Environment["ROOT_SECRET_ACCESS_KEY"])
	}
	rd := c.Services["redis"]
	if !strings.Contains(strings.Join(rd.Command, " "), "--requirepass") || !strings.HasPrefix(rd.Environment["REDIS_PASSWORD"], "${REDIS_PASSWORD") {
		t.Errorf("redis runs %v with REDIS_PASSWORD %q; want --requirepass from .env", rd.Command, rd.Environment["REDIS_PASSWORD"])
	}
}

// envExample reads .env.example: its keys, commented-out ones included, and their values.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "#"))
		if k, v, ok := strings.Cut(line, "="); ok && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			out[k] = v
		}
	}
	return out
}

// TestComposeSecretsComeFromEnv: no secret is written in the compose file; each comes from a
// variable that .env.example lists, and the real .env is ignored by git.
func TestComposeSecretsComeFromEnv(t *testing.T) {
	c, raw := readCompose(t)
	example := envExample(t)
	secretName := regexp.MustCompile(`(?i)(password|secret|token|auth)`)
	ref := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`)
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !strings.HasPrefix(v, "${") {
				t.Errorf("%s: %s is written in the file (%q); take it from .env", name, k, v)
			}
		}
	}
	for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not list", m[1])
		}
	}
	// The example's values never appear in the compose file's values, e.g. in a URL.
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var scalars []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			scalars = append(scalars, n.Value)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	for k, v := range example {
		if len(v) < 4 {
			continue
		}
		word := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(v) + `($|[^A-Za-z0-9])`)
		for _, s := range scalars {
			if word.MatchString(s) {
				t.Errorf("the value of %s from .env.example is written in docker-compose.yml: %q", k, s)
			}
		}
	}
	if example["CHAT_JWT_SECRET"] != "" {
		t.Errorf(".env.example sets CHAT_JWT_SECRET; leave it to be generated")
	}
	gi, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(gi)), ".env") {
		t.Errorf(".gitignore does not ignore .env")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	var froms []string
	var user, health string
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
			user = "" // USER counts in the final stage only
		case "USER":
			user = f[1]
		case "HEALTHCHECK":
			health = line
		}
	}
	if len(froms) < 2 {
		t.Errorf("the Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("the final stage runs as %q, want a non-root user", user)
	}
	if !strings.Contains(df, "/healthz") || health == "" {
		t.Error("no HEALTHCHECK against /healthz")
	}
	di, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".env"} {
		if !slices.Contains(strings.Fields(string(di)), want) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
}

// TestNginxTemplate: the rules of the configuration, and nginx accepts it as rendered by this
// package and by scripts/cluster.sh, which render the same.
func TestNginxTemplate(t *testing.T) {
	n := deploy.Nginx{Prefix: t.TempDir(), Listen: "127.0.0.1:18080", Upstreams: []string{"127.0.0.1:18081", "127.0.0.1:18082"},
		User: "nobody nogroup", Workers: 2}
	_, chatConf, err := n.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"map $http_upgrade $connection_upgrade",
		"proxy_set_header Connection        $connection_upgrade;",
		"proxy_set_header Upgrade           $http_upgrade;",
		"proxy_set_header Host              $http_host;",
		"proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;",
		"proxy_set_header X-Forwarded-Proto $scheme;",
		"client_max_body_size 64k;",
		"error_page 413 @too_large;",
		// Uploads stream through, uncapped and unbuffered: the instance enforces the limit.
		"location ~ ^/api/v1/chats/[0-9]+/files$ {\n        client_max_body_size 0;\n        proxy_request_buffering off;",
		"proxy_next_upstream error timeout;",
		"location = /api/v1/ws",
		"proxy_read_timeout 1h;",
		"gzip on;",
		"server 127.0.0.1:18082 max_fails=1 fail_timeout=5s;",
		"server 127.0.0.1:18082 backup max_fails=0;", // see TestNginxRollingRestart in e2e/failover
		"listen 127.0.0.1:18080;",
	} {
		if !strings.Contains(chatConf, want) {
			t.Errorf("chat.conf lacks %q", want)
		}
	}
	for _, typ := range []string{"text/css", "application/javascript", "application/json"} {
		if !regexp.MustCompile(`gzip_types[^;]*` + regexp.QuoteMeta(typ)).MatchString(chatConf) {
			t.Errorf("gzip_types lacks %s", typ)
		}
	}
	if regexp.MustCompile(`proxy_next_upstream [^;]*non_idempotent`).MatchString(chatConf) {
		t.Error("proxy_next_upstream must never retry POST (non_idempotent)")
	}
	if strings.Contains(chatConf, "${") {
		t.Error("a placeholder was left unrendered")
	}

	bin, err := deploy.NginxBinary()
	if err != nil {
		testdb.Unavailable(t, "nginx", err)
	}
	if err := n.Write(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, append(n.Args(), "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}

	// scripts/cluster.sh renders the same files.
	shDir := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "cluster.sh"), "nginx-conf", shDir, n.Listen, strings.Join(n.Upstreams, ","))
	cmd.Env = append(os.Environ(), "NGINX_WORKER_USER=nobody nogroup", "NGINX_WORKERS=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cluster.sh nginx-conf: %v\n%s", err, out)
	}
	n.Prefix, n.Daemon = shDir, true
	wantMain, wantChat, _ := n.Render()
	for file, want := range map[string]string{"nginx.conf": wantMain, "chat.conf": wantChat} {
		got, err := os.ReadFile(filepath.Join(shDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("cluster.sh renders %s differently:\n%s\nwant:\n%s", file, got, want)
		}
	}
}
