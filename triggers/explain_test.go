package triggers_test

import (
	"encoding/json"
	"testing"

	"github.com/callctx/callctx/triggers"
)

const scenario = `
triggers:
  has-email:
    description: The CRM found the caller.
    when: {var: ivr.email, op: set}
  premium:
    when:
      all:
        - trigger: has-email
        - {var: ivr.premium, op: eq, value: true}
        - {var: ivr.tier, op: in, value: [gold, null]}
  office-hours:
    when: {any: [{op: after, value: "09:00", tz: Europe/Berlin}, {not: {var: ivr.note, op: empty}}]}
`

func TestTrigger_Explain(t *testing.T) {
	set := mustCompile(t, scenario)
	now := mustTime(t, nowUTC)

	t.Run("Nested", func(t *testing.T) {
		tr, _ := set.Trigger("premium")
		vars := triggers.Map{"ivr.email": "a@b.c", "ivr.premium": "no", "ivr.tier": nil}
		got, err := json.Marshal(tr.Explain(vars, now))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"kind":"trigger","trigger":"premium","result":false,"children":[` +
			`{"kind":"all","result":false,"children":[` +
			`{"kind":"trigger","trigger":"has-email","result":true,"children":[` +
			`{"kind":"compare","var":"ivr.email","op":"set","seen":"a@b.c","result":true}]},` +
			`{"kind":"compare","var":"ivr.premium","op":"eq","value":true,"seen":"no","result":false},` +
			`{"kind":"compare","var":"ivr.tier","op":"in","value":["gold",null],"seen":null,"result":true}]}]}`
		if string(got) != want {
			t.Fatalf("Explain=\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("MissingAndClock", func(t *testing.T) {
		tr, _ := set.Trigger("office-hours")
		e := tr.Explain(triggers.Map{}, now)
		got, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"kind":"trigger","trigger":"office-hours","result":true,"children":[` +
			`{"kind":"any","result":true,"children":[` +
			`{"kind":"compare","op":"after","value":"09:00","seen":"2025-03-10T09:30:00+01:00","tz":"Europe/Berlin","result":true},` +
			`{"kind":"not","result":false,"children":[` +
			`{"kind":"compare","var":"ivr.note","op":"empty","missing":true,"result":true}]}]}]}`
		if string(got) != want {
			t.Fatalf("Explain=\n%s\nwant\n%s", got, want)
		}
	})
}
