-- name: CustomerGetByUser :one
SELECT * FROM customers WHERE user_id = @user_id;

-- name: CustomerGetByStripeID :one
SELECT * FROM customers WHERE stripe_customer_id = @stripe_customer_id;

-- name: CustomerInsert :exec
INSERT INTO customers (user_id, stripe_customer_id)
VALUES (@user_id, @stripe_customer_id)
ON CONFLICT (user_id) DO NOTHING;

-- name: CustomerLock :exec
-- CustomerLock serialises the creation of one user's Stripe customer between replicas
-- until the transaction ends.
SELECT pg_advisory_xact_lock(hashtextextended('subscription.customer:' || sqlc.arg(user_id)::text, 0));
