// A file name or path shown safely: text nodes only (never markup), with
// control, invisible and reordering characters replaced by visible escapes.
import { displayName, nameParts } from './format.js'

export function Name({ text, class: cls }: { text: string; class?: string }) {
  const parts = nameParts(text)
  return (
    <span class={cls} title={displayName(text)}>
      {parts.map((p, i) =>
        p.escaped ? (
          <span key={i} class="esc">
            {p.text}
          </span>
        ) : (
          p.text
        ),
      )}
    </span>
  )
}
