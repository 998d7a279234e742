package selector_test

import (
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
)

func ExampleCompile() {
	sel, err := selector.Compile(`form.checkout input[name="cvv"]`)
	if err != nil {
		panic(err)
	}
	field := selector.Element{Tag: "INPUT", Attributes: map[string]string{"name": "cvv"}}
	ancestors := []selector.Element{
		{Tag: "html"},
		{Tag: "body"},
		{Tag: "form", Classes: []string{"checkout"}},
	}
	fmt.Println(sel.Match(field, ancestors))

	_, err = selector.Compile("li:first-child")
	fmt.Println(errors.Is(err, selector.ErrInvalid), err)
	// Output:
	// true
	// true invalid selector: ":first-child" needs document state the service cannot see
}
