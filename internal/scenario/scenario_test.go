package scenario_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backplane/backplane/internal/scenario"
)

// childEnv makes the test binary, run again by TestAFailedStepStopsTheScenario, run
// the scenario whose outcome that test reads.
const childEnv = "SCENARIO_TEST_CHILD"

// TestChildScenario is the scenario under test: it runs only in the child process.
func TestChildScenario(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	scenario.Step(t, "first", func(t *testing.T) { t.Log("first ran") })
	scenario.Step(t, "second", func(t *testing.T) { t.Fatal("second failed") })
	scenario.Step(t, "third", func(t *testing.T) { t.Log("third ran") })
	t.Log("the scenario went on after a failed step")
}

func TestAFailedStepStopsTheScenario(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), self, "-test.run=^TestChildScenario$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "a failed step fails the test\n%s", out)

	require.Contains(t, string(out), "--- PASS: TestChildScenario/first", "each step is a subtest named for it")
	require.Contains(t, string(out), "--- FAIL: TestChildScenario/second")
	require.Contains(t, string(out), "second failed")
	require.NotContains(t, string(out), "third ran", "no step runs after a failed one")
	require.NotContains(t, string(out), "went on")
}

func TestPassingStepsPass(t *testing.T) {
	t.Parallel()
	var ran []string
	for _, name := range []string{"one", "two"} {
		scenario.Step(t, name, func(t *testing.T) { ran = append(ran, t.Name()) })
	}
	require.Equal(t, []string{"TestPassingStepsPass/one", "TestPassingStepsPass/two"}, ran)
}
