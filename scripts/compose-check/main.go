// compose-check validates a Compose file with compose-spec/compose-go, the library
// that `docker compose config` is built on. scripts/test.sh runs it where the docker
// client lacks the compose plugin, so CI still catches a broken docker-compose.yml.
//
// Usage: compose-check path/to/docker-compose.yml
// Exits 0 when the file loads, 1 with the loader's error on stderr when it does not.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check path/to/docker-compose.yml")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// check loads the file as `docker compose -f FILE config` would: the project
// directory is the file's directory, variables come from the process environment
// and then that directory's .env (if any), and relative paths are resolved against
// it. Everything else is the loader's defaults: interpolation, schema validation,
// extends/include, env_file resolution, normalization and the consistency checks
// (depends_on, networks, volumes, secrets...). Like docker compose config, it never
// requires a bind-mount source to exist: that is only checked when containers start.
func check(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithOsEnv,
		cli.WithEnvFiles(), // no explicit files: the project dir's .env, if present
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	_, err = opts.LoadProject(context.Background())
	return err
}
