// compose-check loads a Compose file with compose-go, the loader of `docker compose`, with every
// profile enabled: schema, interpolation, references between services (depends_on, volumes,
// networks) and merge rules are checked as `docker compose config` would, without a Docker
// engine. Used by dev/check-compose.sh.
//
// Usage: compose-check FILE
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	names := make([]string, 0, len(project.Services))
	for name, service := range project.Services {
		replicas := 1
		if service.Deploy != nil && service.Deploy.Replicas != nil {
			replicas = *service.Deploy.Replicas
		}
		names = append(names, fmt.Sprintf("%s(%d)", name, replicas))
	}
	sort.Strings(names)
	fmt.Printf("project %s: services %v\n", project.Name, names)
}
