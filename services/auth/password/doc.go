// Package password hashes and checks passwords with argon2id, and holds the policy a new
// password must meet. Hashing runs on a fixed number of worker threads (one per core by
// default) at the lowest scheduling priority, so a flood of logins uses every idle cycle
// while the kernel still runs the rest of the process first; the argon2id code is
// x/crypto's, forked (internal/argon2) only so that a hash never leaves its worker's
// thread.
package password
