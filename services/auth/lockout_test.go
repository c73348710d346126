package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	authv1 "github.com/backplane/backplane/gen/backplane/auth/v1"
	"github.com/backplane/backplane/internal/scenario"
	"github.com/backplane/backplane/services/auth/password"
)

// heldHasher counts argon2id computations and, while held, keeps every one waiting at
// its start, so that a test can line many sign-ins up at the point where they hash.
type heldHasher struct {
	asked atomic.Int64
	mu    sync.Mutex
	gate  chan struct{}
}

func (h *heldHasher) hook(ctx context.Context) {
	h.asked.Add(1)
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
}

func (h *heldHasher) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = make(chan struct{})
}

func (h *heldHasher) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.gate)
	h.gate = nil
}

func withHeldHasher(t testing.TB, h *heldHasher) option {
	hasher, err := password.NewHasher(t.Context(), password.Params{Memory: 64, Time: 1, Threads: 1}, 4,
		password.WithComputeHook(h.hook))
	require.NoError(t, err)
	return func(_ *Config, w *wiring) { w.hasher = hasher }
}

// TestLockoutHoldsUnderConcurrency: the attempt is reserved before any hashing, so 24
// wrong guesses sent at once, then the right password, cost 25 attempts: with a limit
// of 5 the right one is refused too, and only 5 hashes are computed.
func TestLockoutHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	held := &heldHasher{}
	b := setupDoors(t, withHeldHasher(t, held))
	require.Equal(t, 5, b.cfg.LoginMaxFailures)
	for i, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			acct := b.signUp(t, uniqueEmail())
			ip := fmt.Sprintf("203.0.113.%d", i+1)
			const wrong = 24
			held.hold()
			asked := held.asked.Load()
			var (
				wg       sync.WaitGroup
				answered atomic.Int64
				mu       sync.Mutex
				got      = map[codes.Code]int{}
			)
			for range wrong {
				wg.Go(func() {
					_, code := d.login(t, ip, acct.email, "not the password", "")
					mu.Lock()
					got[code]++
					mu.Unlock()
					answered.Add(1)
				})
			}
			// Every wrong guess has either reached the hasher or been answered.
			require.Eventually(t, func() bool { return held.asked.Load()-asked+answered.Load() == wrong },
				10*time.Second, 5*time.Millisecond)
			var right codes.Code
			wg.Go(func() {
				_, right = d.login(t, ip, acct.email, acct.password, "")
				answered.Add(1)
			})
			require.Eventually(t, func() bool { return held.asked.Load()-asked+answered.Load() == wrong+1 },
				10*time.Second, 5*time.Millisecond)
			held.release()
			wg.Wait()

			require.Equal(t, codes.ResourceExhausted, right, "the right password is refused too")
			require.Equal(t, map[codes.Code]int{codes.Unauthenticated: 5, codes.ResourceExhausted: wrong - 5}, got)
			require.EqualValues(t, 5, held.asked.Load()-asked, "only the reserved attempts were hashed")
		})
	}
}

// TestLockoutCannotLockTheOwnerOut follows OWASP's guidance on malicious lockout: guesses
// are throttled by account and source together, the owner's known device gets through
// while the account is throttled for everyone else, and a password reset lifts it all.
func TestLockoutCannotLockTheOwnerOut(t *testing.T) {
	t.Parallel()
	b := setupDoors(t)
	limit := b.cfg.LoginMaxFailures
	for i, d := range b.doors {
		t.Run(d.name, func(t *testing.T) {
			acct := b.signUp(t, uniqueEmail())
			ownerIP := fmt.Sprintf("192.0.2.%d", i+1)
			attackerIP := fmt.Sprintf("198.51.100.%d", i+1)
			var device string

			scenario.Step(t, "a sign-in hands out a device token", func(t *testing.T) {
				resp, code := d.login(t, ownerIP, acct.email, acct.password, "")
				require.Equal(t, codes.OK, code)
				device = resp.GetDeviceToken()
				require.NotEmpty(t, device)
				resp, code = d.login(t, ownerIP, acct.email, acct.password, device)
				require.Equal(t, codes.OK, code)
				require.Equal(t, device, resp.GetDeviceToken(), "a known device keeps its token")
			})
			scenario.Step(t, "guesses from one address throttle that address only", func(t *testing.T) {
				for range limit {
					_, code := d.login(t, attackerIP, acct.email, "wrong guess", "")
					require.Equal(t, codes.Unauthenticated, code)
				}
				_, code := d.login(t, attackerIP, acct.email, acct.password, "")
				require.Equal(t, codes.ResourceExhausted, code, "the attacker's address is throttled, right password or not")
				_, code = d.login(t, ownerIP, acct.email, acct.password, "")
				require.Equal(t, codes.OK, code, "the owner, elsewhere, is not")
			})
			scenario.Step(t, "guesses from everywhere throttle every stranger, not the owner's device", func(t *testing.T) {
				for n := range ipFactor {
					ip := fmt.Sprintf("198.51.%d.%d", 101+n, i+1)
					for range limit {
						_, code := d.login(t, ip, acct.email, "wrong guess", "")
						require.Equal(t, codes.Unauthenticated, code)
					}
				}
				_, code := d.login(t, "192.0.2.200", acct.email, acct.password, "")
				require.Equal(t, codes.ResourceExhausted, code, "a new device waits")
				_, code = d.login(t, "192.0.2.200", acct.email, acct.password, "forged-"+device)
				require.Equal(t, codes.ResourceExhausted, code, "a token the account never issued is no device")
				_, code = d.login(t, "192.0.2.200", acct.email, acct.password, device)
				require.Equal(t, codes.OK, code, "the owner's device gets through")
			})
			scenario.Step(t, "a device is throttled on its own", func(t *testing.T) {
				for range limit {
					_, code := d.login(t, ownerIP, acct.email, "wrong guess", device)
					require.Equal(t, codes.Unauthenticated, code)
				}
				_, code := d.login(t, ownerIP, acct.email, acct.password, device)
				require.Equal(t, codes.ResourceExhausted, code)
			})
			scenario.Step(t, "a password reset lifts the throttle", func(t *testing.T) {
				_, err := b.srv.ForgotPassword(t.Context(), &authv1.ForgotPasswordRequest{Email: acct.email})
				require.NoError(t, err)
				token := b.mailToken(t, acct.user.GetId(), "reset_password")
				const newPassword = "a brand new passphrase"
				require.Equal(t, codes.OK, d.call(t, ownerIP, "", "ResetPassword",
					&authv1.ResetPasswordRequest{Token: token, NewPassword: newPassword}, &authv1.ResetPasswordResponse{}))
				_, code := d.login(t, "192.0.2.201", acct.email, newPassword, "")
				require.Equal(t, codes.OK, code, "from a new device")
				_, code = d.login(t, attackerIP, acct.email, newPassword, "")
				require.Equal(t, codes.OK, code, "even from an address that guessed before")
			})
		})
	}
}

// TestTrustedDevicesAreBounded: a client that never sends its device token back makes a
// new device at each sign-in; the account keeps only the newest, and they still work.
func TestTrustedDevicesAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := b.signUp(t, uniqueEmail())
	var first, last string
	for i := range maxTrustedDevices + 3 {
		resp, err := b.srv.Login(t.Context(), &authv1.LoginRequest{Email: acct.email, Password: acct.password})
		require.NoError(t, err)
		if i == 0 {
			first = resp.GetDeviceToken()
		}
		last = resp.GetDeviceToken()
	}
	var n int
	require.NoError(t, b.pool.QueryRow(t.Context(), "SELECT count(*) FROM trusted_devices WHERE user_id = $1", acct.user.GetId()).Scan(&n))
	require.Equal(t, maxTrustedDevices, n)
	id, err := b.srv.trustedDevice(t.Context(), uuidOf(t, acct.user.GetId()), last)
	require.NoError(t, err)
	require.NotEmpty(t, id, "the newest device is kept")
	id, err = b.srv.trustedDevice(t.Context(), uuidOf(t, acct.user.GetId()), first)
	require.NoError(t, err)
	require.Empty(t, id, "the oldest is forgotten")
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}
