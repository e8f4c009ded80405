package flow

import "github.com/callctx/callctx/triggers"

// RenderURL exposes URL templates to the external tests.
func RenderURL(tmpl string, vars triggers.Vars) (string, error) {
	u, err := parseURLTemplate(tmpl)
	if err != nil {
		return "", err
	}
	return u.render(vars), nil
}

// RenderBody exposes body templates to the external tests.
func RenderBody(body any, vars triggers.Vars) ([]byte, error) {
	return parseBody(body).render(vars)
}
