package deploy_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type (
	networkPolicy struct {
		Spec struct {
			PodSelector labelSelector `yaml:"podSelector"`
			PolicyTypes []string      `yaml:"policyTypes"`
			Ingress     []struct {
				From  []peer   `yaml:"from"`
				Ports []npPort `yaml:"ports"`
			} `yaml:"ingress"`
			Egress []struct {
				To    []peer   `yaml:"to"`
				Ports []npPort `yaml:"ports"`
			} `yaml:"egress"`
		} `yaml:"spec"`
	}
	peer struct {
		PodSelector       *labelSelector `yaml:"podSelector"`
		NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
		IPBlock           *struct {
			CIDR   string   `yaml:"cidr"`
			Except []string `yaml:"except"`
		} `yaml:"ipBlock"`
	}
	npPort struct {
		Port     any    `yaml:"port"`
		Protocol string `yaml:"protocol"`
	}
)

// rulePorts names a rule's ports, e.g. "grpc", "5432".
func rulePorts(ports []npPort) []string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprint(p.Port))
	}
	return out
}

// components returns the components a rule's peers select within the release, and
// whether any peer reaches further (other namespaces, addresses).
func components(peers []peer) (out []string, outside bool) {
	for _, p := range peers {
		if p.PodSelector != nil && p.NamespaceSelector == nil && p.IPBlock == nil {
			out = append(out, p.PodSelector.MatchLabels["app.kubernetes.io/component"])
			continue
		}
		outside = true
	}
	sort.Strings(out)
	return out, outside
}

func policies(t testing.TB, objs []object) map[string]networkPolicy {
	t.Helper()
	out := map[string]networkPolicy{}
	for _, o := range only(objs, "NetworkPolicy") {
		var np networkPolicy
		o.decode(t, &np)
		key := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"]
		if key == "" {
			key = "*"
		}
		require.NotContains(t, out, key, "two policies for %s", key)
		out[key] = np
	}
	return out
}

func TestNetworkPoliciesAllowOnlyWhatEachPieceNeeds(t *testing.T) {
	t.Parallel()
	calls := dials(t)
	callers := map[string][]string{}
	for piece, callees := range calls {
		for _, c := range callees {
			callers[c] = append(callers[c], piece)
		}
	}
	httpsEgress := map[string]map[string]bool{
		"default": {"subscription": true, "notification": true, "usage": true},
		// prod-values stores files on S3, which opens HTTPS for asset as well.
		"prod": {"subscription": true, "notification": true, "usage": true, "asset": true},
	}

	for _, vs := range valuesSets[:2] {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, vs.file)
			nps := policies(t, objs)

			deny, ok := nps["*"]
			require.True(t, ok, "no default-deny policy over the release")
			assert.ElementsMatch(t, []string{"Ingress", "Egress"}, deny.Spec.PolicyTypes)
			assert.Empty(t, deny.Spec.Ingress)
			assert.Empty(t, deny.Spec.Egress)
			assert.Equal(t, "bp", deny.Spec.PodSelector.MatchLabels["app.kubernetes.io/instance"])

			for _, piece := range pieces {
				np, ok := nps[piece]
				require.True(t, ok, "no NetworkPolicy for %s", piece)
				assert.ElementsMatch(t, []string{"Ingress", "Egress"}, np.Spec.PolicyTypes, piece)

				for _, rule := range np.Spec.Ingress {
					ports := rulePorts(rule.Ports)
					from, outside := components(rule.From)
					switch {
					case slices.Equal(ports, []string{"admin"}):
						require.Len(t, rule.From, 1, "%s: metrics from the monitoring namespace alone", piece)
						assert.Equal(t, "monitoring", rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"], piece)
					case piece == "gateway":
						assert.Equal(t, []string{"http", "grpc"}, ports, "the gateway's front doors")
						if vs.name == "prod" {
							require.Len(t, rule.From, 1)
							assert.Equal(t, "ingress-nginx", rule.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
						} else {
							assert.Empty(t, rule.From, "by default anyone may reach the gateway")
						}
					default:
						assert.Equal(t, []string{"grpc"}, ports, "%s takes nothing but gRPC and scrapes", piece)
						assert.False(t, outside, "%s takes gRPC from outside the release", piece)
						want := slices.Clone(callers[piece])
						sort.Strings(want)
						assert.Equal(t, want, from, "%s must take gRPC from exactly the pieces that call it", piece)
					}
				}
				if piece != "gateway" {
					assert.NotEmpty(t, np.Spec.Ingress, "%s: nobody may call it", piece)
				}

				egress := map[string]bool{}
				for _, rule := range np.Spec.Egress {
					ports := rulePorts(rule.Ports)
					for _, p := range ports {
						egress[p] = true
					}
					if slices.Contains(ports, "grpc") {
						to, outside := components(rule.To)
						assert.False(t, outside, piece)
						want := slices.Clone(calls[piece])
						sort.Strings(want)
						assert.Equal(t, want, to, "%s must reach exactly the services it calls", piece)
					}
					if slices.Contains(ports, "53") {
						require.NotEmpty(t, rule.To, "%s: DNS only to the cluster's DNS", piece)
						assert.Equal(t, "kube-dns", rule.To[0].PodSelector.MatchLabels["k8s-app"], piece)
					}
					if slices.Contains(ports, "443") {
						for _, to := range rule.To {
							require.NotNil(t, to.IPBlock, piece)
							if to.IPBlock.CIDR == "0.0.0.0/0" {
								assert.Contains(t, to.IPBlock.Except, "169.254.0.0/16", "%s: HTTPS egress must not reach the cloud metadata endpoint", piece)
								assert.Contains(t, to.IPBlock.Except, "10.0.0.0/8", "%s: HTTPS egress is for the internet, not the VPC", piece)
							}
						}
					}
					if vs.name == "prod" && slices.Contains(ports, "5432") {
						require.Len(t, rule.To, 1)
						assert.Equal(t, "10.0.64.0/20", rule.To[0].IPBlock.CIDR, "%s: PostgreSQL only in the database subnets", piece)
					}
				}
				assert.True(t, egress["53"], "%s: DNS", piece)
				assert.True(t, egress["6379"], "%s: Redis", piece)
				assert.Equal(t, piece != "gateway", egress["5432"], "%s: PostgreSQL is for the services, not the gateway", piece)
				assert.Equal(t, httpsEgress[vs.name][piece], egress["443"], "%s: HTTPS egress", piece)
				assert.Equal(t, vs.name == "prod", egress["4317"], "%s: OTLP egress only when an endpoint is set", piece)
			}

			// The migrations Job reaches DNS and PostgreSQL, and nothing else.
			mig, ok := nps["migrate"]
			require.True(t, ok, "no NetworkPolicy for the migrations Job")
			assert.Empty(t, mig.Spec.Ingress)
			var ports []string
			for _, rule := range mig.Spec.Egress {
				ports = append(ports, rulePorts(rule.Ports)...)
			}
			assert.ElementsMatch(t, []string{"53", "53", "5432"}, ports)
		})
	}

	// Without metrics scraping allowed, the admin port takes nothing.
	nps := policies(t, render(t, "", "networkPolicy.metricsFrom=null"))
	for _, piece := range pieces {
		for _, rule := range nps[piece].Spec.Ingress {
			assert.NotContains(t, rulePorts(rule.Ports), "admin", piece)
		}
	}
	assert.Empty(t, only(render(t, "", "networkPolicy.enabled=false"), "NetworkPolicy"))
}
