package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Mix is the share of each kind of check in a workload; the shares are
// normalized, so they need not add up to 1.
type Mix struct {
	// Allowlisted and NotAllowlisted are CLICK, TYPE and SCROLL checks on
	// pages the account allowlists and on pages it does not.
	Allowlisted    float64
	NotAllowlisted float64
	// Privacy are CLICK, TYPE and VIEW_ELEMENT checks on elements that
	// privacy rules target (and on harmless fields next to them).
	Privacy float64
	// Support are support-function checks in support sessions.
	Support float64
}

// DefaultMix is 80 % co-browse actions (60 % on allowlisted pages, 20 %
// on pages off the allowlist), 10 % privacy-rule elements and 10 % support
// functions.
var DefaultMix = Mix{Allowlisted: 0.6, NotAllowlisted: 0.2, Privacy: 0.1, Support: 0.1}

// Workload is a pool of prepared CheckFeature requests following a Mix,
// drawn from a manifest's probes.
type Workload struct {
	Checks []*gatehousev1.CheckFeatureRequest
	// Expect[i] is the decision Checks[i] must get.
	Expect []Expect
	// Kinds counts the checks of each kind in Checks.
	Kinds map[string]int
}

// clickTarget and typeTarget are the elements ordinary clicks and
// keystrokes report: a navigation link and a search field.
var (
	clickTarget = Element{Tag: "a", Classes: []string{"nav-link"}, Attributes: map[string]string{"href": "/products"},
		Ancestors: baseChain(Element{Tag: "nav", Classes: []string{"menu"}}, Element{Tag: "ul"}, Element{Tag: "li"})}
	typeTarget = Element{Tag: "input", Classes: []string{"search"}, Attributes: map[string]string{"name": "q", "type": "search"},
		Ancestors: baseChain(Element{Tag: "form", Classes: []string{"search"}})}
)

// ToProto converts e to the wire type.
func (e *Element) ToProto() *gatehousev1.Element {
	out := &gatehousev1.Element{Tag: e.Tag, Id: e.ID, Classes: e.Classes, Attributes: e.Attributes}
	for _, a := range e.Ancestors {
		out.Ancestors = append(out.Ancestors, &gatehousev1.ElementNode{Tag: a.Tag, Id: a.ID, Classes: a.Classes, Attributes: a.Attributes})
	}
	return out
}

// BuildWorkload prepares n checks following mix from the manifest's
// probes. It is deterministic for a seed.
func BuildWorkload(m *Manifest, n int, mix Mix, seed uint64) (*Workload, error) {
	var cobrowse, support, privacy []*Probe
	for i := range m.Probes {
		p := &m.Probes[i]
		switch {
		case p.Support:
			if len(p.Functions) > 0 {
				support = append(support, p)
			}
		case len(p.AllowedURLs) > 0:
			cobrowse = append(cobrowse, p)
			if len(p.Privacy) > 0 {
				privacy = append(privacy, p)
			}
		}
	}
	if len(cobrowse) == 0 {
		return nil, errors.New("manifest has no Live Guide session to ask about")
	}
	total := mix.Allowlisted + mix.NotAllowlisted + mix.Privacy + mix.Support
	if total <= 0 {
		return nil, errors.New("empty mix")
	}
	if len(privacy) == 0 {
		mix.Privacy = 0
	}
	if len(support) == 0 {
		mix.Support = 0
	}
	total = mix.Allowlisted + mix.NotAllowlisted + mix.Privacy + mix.Support
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	w := &Workload{Kinds: map[string]int{}}
	click, typ := clickTarget.ToProto(), typeTarget.ToProto()
	for range n {
		x := rng.Float64() * total
		var req *gatehousev1.CheckFeatureRequest
		var kind string
		var want Expect
		switch {
		case x < mix.Allowlisted+mix.NotAllowlisted:
			p := cobrowse[rng.IntN(len(cobrowse))]
			kind = "allowlisted"
			url := p.AllowedURLs[rng.IntN(len(p.AllowedURLs))]
			denied := false
			if x >= mix.Allowlisted && len(p.DeniedURLs) > 0 {
				kind = "not_allowlisted"
				url = p.DeniedURLs[rng.IntN(len(p.DeniedURLs))]
				denied = true
			}
			req = &gatehousev1.CheckFeatureRequest{SessionId: p.SessionID, Url: url}
			if rng.IntN(4) == 0 {
				req.Actor = &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, Id: p.CustomerID}
			} else {
				req.Actor = &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: p.RepresentativeID}
			}
			switch y := rng.IntN(10); {
			case y < 5:
				req.Feature, req.Element = gatehousev1.Feature_FEATURE_CLICK, click
			case y < 8:
				req.Feature = gatehousev1.Feature_FEATURE_SCROLL
			default:
				req.Feature, req.Element = gatehousev1.Feature_FEATURE_TYPE, typ
			}
			want = p.cobrowseExpect(req.Actor.Role == gatehousev1.Role_ROLE_AGENT, policy.Feature(req.Feature), denied, nil)
		case x < mix.Allowlisted+mix.NotAllowlisted+mix.Privacy:
			p := privacy[rng.IntN(len(privacy))]
			pp := p.Privacy[rng.IntN(len(p.Privacy))]
			kind = "privacy"
			req = &gatehousev1.CheckFeatureRequest{
				SessionId: p.SessionID, Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: p.RepresentativeID},
				Feature: gatehousev1.Feature(pp.Feature), Url: pp.URL, Element: pp.Element.ToProto(),
			}
			want = p.cobrowseExpect(true, pp.Feature, false, &pp)
		default:
			p := support[rng.IntN(len(support))]
			kind = "support"
			k := rng.IntN(len(p.Functions))
			fn := p.Functions[k]
			want = p.FunctionExpect[k]
			req = &gatehousev1.CheckFeatureRequest{
				SessionId: p.SessionID, Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: p.RepresentativeID},
				Feature: gatehousev1.Feature(policy.FeatureFunctionBase + policy.Feature(fn)),
			}
			if rng.IntN(3) == 0 {
				req.Actor = &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, Id: p.CustomerID}
			}
		}
		w.Kinds[kind]++
		w.Checks = append(w.Checks, req)
		w.Expect = append(w.Expect, want)
	}
	return w, nil
}

// Batch returns the k-th batch of size checks (wrapping around the pool)
// and the decisions they must get.
func (w *Workload) Batch(k, size int) (*gatehousev1.CheckFeaturesRequest, []Expect) {
	out := &gatehousev1.CheckFeaturesRequest{Checks: make([]*gatehousev1.CheckFeatureRequest, size)}
	want := make([]Expect, size)
	for i := range size {
		out.Checks[i] = w.Checks[(k*size+i)%len(w.Checks)]
		want[i] = w.Expect[(k*size+i)%len(w.Checks)]
	}
	return out, want
}

// Conns is a set of client connections that callers share round-robin
// (caller i uses connection i mod len).
type Conns []*grpc.ClientConn

// Close closes every connection.
func (cs Conns) Close() {
	for _, c := range cs {
		_ = c.Close()
	}
}

// encoded is a request message encoded once and sent as it is on every
// call: a load generator should not spend the CPU it shares with the
// server on encoding the same requests again and again. The bytes on the
// wire are the same as with the generated client.
type encoded []byte

// passCodec sends encoded requests as they are and uses the proto codec
// for everything else (responses are decoded and checked as usual).
type passCodec struct{ proto encoding.CodecV2 }

func (c passCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return c.proto.Marshal(v)
}

func (c passCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (passCodec) Name() string { return "proto" }

var passThrough = []grpc.CallOption{grpc.ForceCodecV2(passCodec{encoding.GetCodecV2("proto")})}

func encode(m proto.Message) encoded {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // only messages built by this package are encoded
	}
	return b
}

// HealthOp calls grpc.health.v1.Health/Check (the baseline: the cheapest
// RPC the server has, through the same interceptors).
func HealthOp(cs Conns) Op {
	msg := &healthpb.HealthCheckRequest{}
	req := encode(msg)
	return func(ctx context.Context, worker int, _ uint64) error {
		var resp healthpb.HealthCheckResponse
		if err := cs[worker%len(cs)].Invoke(ctx, healthpb.Health_Check_FullMethodName, req, &resp, passThrough...); err != nil {
			return callError("Health/Check", msg, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return &CallError{Method: "Health/Check", Request: msg, Err: fmt.Errorf("status %v, want SERVING", resp.GetStatus())}
		}
		return nil
	}
}

// CheckOp calls CheckFeature with the workload's checks.
func CheckOp(cs Conns, w *Workload) Op {
	reqs := make([]encoded, len(w.Checks))
	for i, c := range w.Checks {
		reqs[i] = encode(c)
	}
	return func(ctx context.Context, worker int, seq uint64) error {
		var resp gatehousev1.CheckFeatureResponse
		i := (uint64(worker)*7919 + seq) % uint64(len(reqs))
		if err := cs[worker%len(cs)].Invoke(ctx, gatehousev1.DecisionService_CheckFeature_FullMethodName, reqs[i], &resp, passThrough...); err != nil {
			return callError("CheckFeature", w.Checks[i], err)
		}
		return Verify(w.Checks[i], w.Expect[i], &resp)
	}
}

// UndecidedCheckOp calls CheckFeature with the workload's checks, as
// CheckOp does, but checks only that an answer came: for a server that
// answers without deciding (the load test's bare baseline, which measures
// what gRPC costs for these requests and their answers).
func UndecidedCheckOp(cs Conns, w *Workload) Op {
	reqs := make([]encoded, len(w.Checks))
	for i, c := range w.Checks {
		reqs[i] = encode(c)
	}
	return func(ctx context.Context, worker int, seq uint64) error {
		var resp gatehousev1.CheckFeatureResponse
		i := (uint64(worker)*7919 + seq) % uint64(len(reqs))
		if err := cs[worker%len(cs)].Invoke(ctx, gatehousev1.DecisionService_CheckFeature_FullMethodName, reqs[i], &resp, passThrough...); err != nil {
			return err
		}
		if resp.GetDecision() == nil {
			return errors.New("CheckFeature answered no decision")
		}
		return nil
	}
}

// BatchOp calls CheckFeatures with batches of size checks.
func BatchOp(cs Conns, w *Workload, size int) Op {
	batches := make([]encoded, max(1, len(w.Checks)/size))
	reqs := make([]*gatehousev1.CheckFeaturesRequest, len(batches))
	wants := make([][]Expect, len(batches))
	for k := range batches {
		reqs[k], wants[k] = w.Batch(k, size)
		batches[k] = encode(reqs[k])
	}
	return func(ctx context.Context, worker int, seq uint64) error {
		var resp gatehousev1.CheckFeaturesResponse
		k := (uint64(worker)*31 + seq) % uint64(len(batches))
		if err := cs[worker%len(cs)].Invoke(ctx, gatehousev1.DecisionService_CheckFeatures_FullMethodName, batches[k], &resp, passThrough...); err != nil {
			return callError("CheckFeatures", reqs[k], err)
		}
		if len(resp.GetResults()) != size {
			return &CallError{Method: "CheckFeatures", Request: reqs[k], Err: fmt.Errorf("answered %d of %d checks", len(resp.GetResults()), size)}
		}
		for i, got := range resp.GetResults() {
			if !wants[k][i].Matches(got.GetDecision()) {
				return &MismatchError{Method: fmt.Sprintf("CheckFeatures (check %d of %d)", i, size), Request: reqs[k].Checks[i],
					Want: wants[k][i], Got: got.GetDecision()}
			}
		}
		return nil
	}
}
