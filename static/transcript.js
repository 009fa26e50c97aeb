// The conversation as a list of turns. A turn's interim text is updated in place until the gateway says it
// is final; the next transcript of that role then starts a new turn.

const WHO = { user: "You", model: "Model" };

export class Transcript {
  constructor(list) {
    this.list = list;
    this.open = new Map(); // role -> the <li> of its turn in progress
  }

  update(role, text, final) {
    let turn = this.open.get(role);
    if (!turn) {
      turn = this.add(role);
      this.open.set(role, turn);
    }
    turn.querySelector(".text").textContent = text;
    turn.classList.toggle("interim", !final);
    if (final) this.open.delete(role);
    this.list.scrollTop = this.list.scrollHeight;
  }

  // The model's turn was cut short: mark it. Its text so far stays; the rest of it never comes.
  interrupt() {
    const turn = this.open.get("model") ?? [...this.list.querySelectorAll(".turn.model")].at(-1);
    turn?.classList.add("interrupted");
  }

  clear() {
    this.list.replaceChildren();
    this.open.clear();
  }

  add(role) {
    const turn = document.createElement("li");
    turn.className = `turn ${role}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = WHO[role] ?? role;
    const text = document.createElement("span");
    text.className = "text";
    turn.append(who, text);
    this.list.append(turn);
    return turn;
  }
}
