package processors

import "github.com/vigil-auth/vigil/processors/session"

// SessionConfigForTest accepts only tenant "t".
func SessionConfigForTest() session.Config { return session.Config{Tenants: []string{"t"}} }
