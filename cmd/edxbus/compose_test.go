package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/edxbus/edxbus/internal/cliflags"
	"github.com/edxbus/edxbus/internal/testenv"
)

// TestComposeFileMatchesTheCLI parses docker-compose.pulsar.yml and checks
// that every edxbus service runs an existing command and that every EDXBUS_*
// variable it sets names a flag of that command, so the file cannot rot when
// a flag is renamed.
func TestComposeFileMatchesTheCLI(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.pulsar.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Command     yaml.Node         `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	root := newRootCommand()
	checked := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			continue // not an edxbus image
		}
		var args []string
		if err := svc.Command.Decode(&args); err != nil || len(args) == 0 {
			t.Errorf("service %s runs edxbus without a command list: %v", name, err)
			continue
		}
		cmd, _, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("service %s: %v is not an edxbus command", name, args)
			continue
		}
		// The image has no curl: its healthcheck is `edxbus healthcheck`
		// on the port the service listens on.
		hc := svc.Healthcheck.Test
		_, port, _ := strings.Cut(svc.Environment["EDXBUS_HTTP_ADDR"], ":")
		if len(hc) != 4 || hc[0] != "CMD" || hc[2] != "healthcheck" || !strings.HasPrefix(hc[3], "http://127.0.0.1:"+port+"/") {
			t.Errorf("service %s: healthcheck %v, want edxbus healthcheck http://127.0.0.1:%s/readyz", name, hc, port)
		} else if c, _, err := root.Find(hc[2:3]); err != nil || c.Name() != "healthcheck" {
			t.Errorf("service %s: no healthcheck command", name)
		}
		flags := map[string]bool{}
		collect := func(f *pflag.Flag) { flags[cliflags.EnvName(f.Name)] = true }
		cmd.Flags().VisitAll(collect)
		cmd.InheritedFlags().VisitAll(collect)
		for env := range svc.Environment {
			if strings.HasPrefix(env, cliflags.Prefix) && !flags[env] {
				t.Errorf("service %s sets %s, but `edxbus %s` has no such flag", name, env, cmd.Name())
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d EDXBUS_* variables checked: the compose file changed shape?", checked)
	}
}

// TestConfigReferenceInReadme keeps README.md's configuration reference
// equal to what the CLI generates (edxbus docs).
func TestConfigReferenceInReadme(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no config-reference markers")
	}
	var b strings.Builder
	if err := cliflags.WriteReference(&b, newRootCommand()); err != nil {
		t.Fatal(err)
	}
	if got := s[i+len(begin) : j]; got != b.String() {
		t.Fatalf("README.md's configuration reference is out of date: run `make docs`")
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && c.Example == "" && c.Runnable() {
			t.Errorf("%s has no example in its --help", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCommand())
}

// `edxbus --version` prints what `edxbus version` prints.
func TestVersionFlag(t *testing.T) {
	flag, err := runEdxbus(t, "--version")
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := runEdxbus(t, "version")
	if err != nil || flag != cmd || !strings.HasPrefix(flag, "edxbus ") {
		t.Fatalf("--version %q, version %q (%v)", flag, cmd, err)
	}
}

// The configuration reference lists the flags a command's subcommands
// inherit from it (dlq's), and not the ones it hides (run's client URLs).
func TestConfigReferenceCoversEveryFlag(t *testing.T) {
	var b strings.Builder
	if err := cliflags.WriteReference(&b, newRootCommand()); err != nil {
		t.Fatal(err)
	}
	ref := b.String()
	for _, want := range []string{"| `edxbus dlq` | `--dlq-topic` |", "| `edxbus dlq` | `--idle` |", "| `edxbus dlq` | `--pulsar-url` |"} {
		if !strings.Contains(ref, want) {
			t.Errorf("the reference lacks %s", want)
		}
	}
	for _, unwanted := range []string{"| `edxbus run` | `--pulsar-url` |", "| `edxbus run` | `--pulsar-admin-url` |"} {
		if strings.Contains(ref, unwanted) {
			t.Errorf("the reference lists %s, which run ignores", unwanted)
		}
	}
}

// A real Compose parser accepts the file: Debian's docker-compose, which
// .ci/run installs (no Docker engine is needed to validate).
func TestComposeFileIsValidCompose(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		testenv.Unavailable(t, "no docker-compose (apt-get install docker-compose)")
	}
	out, err := exec.Command(bin, "-f", "../../docker-compose.pulsar.yml", "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}
