// Package password hashes and checks passwords with argon2id, and holds the policy a new
// password must meet. Hashing runs on a bounded number of worker goroutines (one per
// core by default) at normal priority, and each hash steps aside, between segments of
// its work, while the rest of the process has work, held back at most as long as it has
// computed: a flood of logins uses every idle cycle while the API still gets the CPU
// first, and nothing can starve a hash. The argon2id code is x/crypto's, forked
// (internal/argon2) so that a hash runs on its worker's goroutine and can be paused there.
package password
