package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// A choice flag takes one of a fixed set of values (an output format, a
// resource type, a language). Every one is registered with choiceFlag, which
// gives it shell completion and has resolveGlobals refuse any other value
// with a usage error (exit 2) that suggests the nearest choice.
type choices struct {
	values  []string          // the canonical values, as help shows them
	aliases map[string]string // other accepted spellings → canonical value
}

// choiceFlag registers the flag name of cmd as a choice flag.
func (a *app) choiceFlag(cmd *cobra.Command, name string, values []string, aliases map[string]string) {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		f = cmd.PersistentFlags().Lookup(name)
	}
	if f == nil {
		panic(fmt.Sprintf("%s has no flag --%s", cmd.CommandPath(), name))
	}
	if a.choices == nil {
		a.choices = map[*pflag.Flag]*choices{}
	}
	a.choices[f] = &choices{values: values, aliases: aliases}
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// fold is how choices compare: case-insensitive, '-' and '_' alike.
func fold(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
}

// resolve returns the canonical value of s, or a usage error naming the
// choices and the nearest one.
func (c *choices) resolve(flag, s string) (string, error) {
	for _, v := range c.values {
		if fold(v) == fold(s) {
			return v, nil
		}
	}
	for alias, v := range c.aliases {
		if fold(alias) == fold(s) {
			return v, nil
		}
	}
	return "", usageError{fmt.Errorf("--%s %q: want one of %s%s", flag, s, strings.Join(c.values, ", "),
		didYouMean(s, append(slices.Clone(c.values), mapKeys(c.aliases)...)))}
}

// checkChoices checks every choice flag cmd was given and sets it to its
// canonical value.
func (a *app) checkChoices(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		c := a.choices[f]
		if c == nil || err != nil {
			return
		}
		var v string
		if v, err = c.resolve(f.Name, f.Value.String()); err == nil {
			err = f.Value.Set(v)
		}
	})
	return err
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// didYouMean returns `; did you mean "x"?` for the choice nearest to s
// when one is close (a typo, a missing or extra letter, a prefix), else "".
func didYouMean(s string, choices []string) string {
	best, bestD := "", 0
	in := fold(s)
	if in == "" {
		return ""
	}
	for _, c := range choices {
		fc := fold(c)
		d := levenshtein(in, fc)
		if strings.HasPrefix(fc, in) || strings.HasPrefix(in, fc) {
			d = min(d, 1)
		}
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(in)/3) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// levenshtein is the edit distance of a and b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// rejectUnknownSubcommands makes every command that only groups others
// (accounts, sessions, audit, …) refuse an unknown subcommand with a usage
// error and a suggestion, instead of printing its help and succeeding.
// Without arguments it still prints its help.
func rejectUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !c.HasParent() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, argv []string) error {
		if len(argv) == 0 {
			return cmd.Help()
		}
		names := availableNames(cmd)
		return usageError{fmt.Errorf("unknown command %q for %q (commands: %s)%s", argv[0], cmd.CommandPath(),
			strings.Join(names, ", "), didYouMean(argv[0], names))}
	}
}

func availableNames(cmd *cobra.Command) []string {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}
