package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	subscriptionv1 "github.com/backplane/backplane/gen/backplane/subscription/v1"
	"github.com/backplane/backplane/internal/fault"
	"github.com/backplane/backplane/internal/plans"
)

// entitlements is what the usage service needs of a user's plan: the limits it
// enforces, the billing period totals count in, and the Stripe items it reports on.
type entitlements struct {
	planID string
	// free is the catalogue's free plan, whose periods are calendar months in UTC.
	free bool
	// limits is the most each meter may count in a period; a meter absent is unlimited.
	limits map[string]int64
	// current is the period under way, as the subscription service last said.
	current period
	// items maps a meter to the Stripe subscription item its totals are billed on.
	items map[string]string
}

// periodAt returns the billing period holding t.
func (e *entitlements) periodAt(t time.Time) period {
	if e.free {
		return calendarMonth(t)
	}
	return periodAt(e.current, t)
}

// limit returns the meter's limit and whether there is one.
func (e *entitlements) limit(meter string) (int64, bool) {
	l, ok := e.limits[meter]
	return l, ok
}

// sqlLimit is the limit as the queries take it: -1 for unlimited.
func (e *entitlements) sqlLimit(meter string) int64 {
	if l, ok := e.limit(meter); ok {
		return l
	}
	return -1
}

// entitlementCache answers entitlements from the subscription service, keeping each
// user's for a short while so that metering costs no call to it per event. A user's entry
// is dropped as soon as the subscription service announces a change on Redis
// (plans.ChangesChannel); the TTL bounds staleness while Redis is unreachable.
type entitlementCache struct {
	client  subscriptionv1.SubscriptionServiceClient
	catalog *plans.Catalog
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	flight  singleflight.Group

	mu      sync.Mutex
	entries map[uuid.UUID]cachedEntitlements
	// generation counts invalidations, so that an answer fetched across one is not
	// stored: it may predate the change announced.
	generation uint64
}

type cachedEntitlements struct {
	e       *entitlements
	expires time.Time
}

// get returns userID's entitlements, from the cache or the subscription service.
func (c *entitlementCache) get(ctx context.Context, userID uuid.UUID) (*entitlements, error) {
	now := c.now()
	c.mu.Lock()
	entry, ok := c.entries[userID]
	gen := c.generation
	c.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.e, nil
	}
	// Concurrent misses for one user make one call; a caller that gives up leaves the
	// call to the others.
	ch := c.flight.DoChan(userID.String(), func() (any, error) {
		return c.fetch(context.WithoutCancel(ctx), userID, gen)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		e, ok := res.Val.(*entitlements)
		if !ok {
			return nil, fault.New(fault.Internal, "the user's plan is unavailable")
		}
		return e, nil
	case <-ctx.Done():
		return nil, fault.Wrap(fault.DeadlineExceeded, ctx.Err(), "the deadline passed while reading the plan")
	}
}

// fetchTimeout bounds one call to the subscription service.
const fetchTimeout = 5 * time.Second

func (c *entitlementCache) fetch(ctx context.Context, userID uuid.UUID, gen uint64) (*entitlements, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	resp, err := c.client.GetEntitlements(ctx, &subscriptionv1.GetEntitlementsRequest{UserId: userID.String()})
	if err != nil {
		kind := fault.Unavailable
		if status.Code(err) == codes.InvalidArgument {
			kind = fault.Internal
		}
		return nil, fault.Wrap(kind, err, "the user's plan is unavailable; retry shortly")
	}
	e := &entitlements{
		planID:  resp.GetPlanId(),
		free:    resp.GetPlanId() == c.catalog.Free().ID,
		limits:  resp.GetQuotaLimits(),
		current: period{start: resp.GetPeriodStart().AsTime(), end: resp.GetPeriodEnd().AsTime()},
		items:   map[string]string{},
	}
	for _, it := range resp.GetMeteredItems() {
		e.items[it.GetMeter()] = it.GetStripeSubscriptionItemId()
	}
	c.mu.Lock()
	if c.generation == gen {
		c.entries[userID] = cachedEntitlements{e: e, expires: c.now().Add(c.ttl)}
	}
	c.mu.Unlock()
	return e, nil
}

// forget drops one user's entry.
func (c *entitlementCache) forget(userID uuid.UUID) {
	c.mu.Lock()
	delete(c.entries, userID)
	c.generation++
	c.mu.Unlock()
}

// forgetAll drops every entry.
func (c *entitlementCache) forgetAll() {
	c.mu.Lock()
	clear(c.entries)
	c.generation++
	c.mu.Unlock()
}

// follow drops the entries of users whose entitlements the subscription service
// announces changed on channel, until ctx ends. Each time the subscription is
// (re)established every entry goes, since announcements made meanwhile were lost.
func (c *entitlementCache) follow(ctx context.Context, rdb redis.UniversalClient, channel string) {
	ps := rdb.Subscribe(ctx, channel)
	// Receive blocks on the connection whatever its context: closing the subscription is
	// what ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stop() {
			_ = ps.Close()
		}
	}()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// go-redis reconnects and subscribes again on the next Receive.
			c.forgetAll()
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			c.forgetAll()
		case *redis.Message:
			if id, err := uuid.Parse(m.Payload); err == nil {
				c.forget(id)
			} else {
				c.log.WarnContext(ctx, "entitlement change for an unparseable user id", "payload_bytes", len(m.Payload))
			}
		}
	}
}
