// Package password hashes and checks passwords with argon2id, and holds the policy a new
// password must meet. Hashing runs on a bounded number of worker threads (one per core
// by default) at a lowered priority, so a flood of logins uses every idle cycle while
// the API still gets the CPU first; a hash starved at that priority is computed again
// at normal priority, so nothing holds a login back for long. The argon2id code is
// x/crypto's, forked (internal/argon2) so that a hash runs on its worker's thread and
// can be given up there.
package password
