// Package password hashes and checks passwords with argon2id, and holds the policy a new
// password must meet. Hashing is bounded to a fixed number of concurrent computations,
// so a flood of logins queues here instead of starving the rest of the process.
package password
