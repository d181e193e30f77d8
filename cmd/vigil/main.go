// Command vigil is Vigil's single binary; see `vigil --help`.
package main

import (
	"os"

	"github.com/vigil-auth/vigil/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
