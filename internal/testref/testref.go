// Package testref finds the reference data tests read but the repository
// does not ship (Mirakl's OpenAPI document, Peoplevox example envelopes).
// .ci/run always sets the variables; a developer without them gets a skip
// that names the variable to set.
package testref

import (
	"os"
	"testing"
)

// Path returns the value of env, or skips the test saying which variable to
// set and to what.
func Path(t testing.TB, env, hint string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set in CI: .ci/run must set it to %s", env, hint)
		}
		t.Skipf("%s is not set: set it to %s to run this test (.ci/run does)", env, hint)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v", env, p, err)
	}
	return p
}

// MiraklSpec is the path of Mirakl's seller OpenAPI document.
func MiraklSpec(t testing.TB) string {
	return Path(t, "MPVX_MIRAKL_SPEC", "../shared/reference/mirakl/mirakl-mmp-seller-openapi.json")
}

// PeoplevoxExamples is the directory of Peoplevox example envelopes.
func PeoplevoxExamples(t testing.TB) string {
	return Path(t, "MPVX_PEOPLEVOX_EXAMPLES", "../shared/reference/peoplevox/examples")
}
