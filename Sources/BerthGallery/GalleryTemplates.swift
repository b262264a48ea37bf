/// The gallery's Mustache templates, stylesheet and script. Every value is written with `{{…}}` (escaped
/// for HTML text and attributes); the only triple mustache is `{{{html}}}` of a `SafeMarkdown` rendering.
enum GalleryTemplates {
    static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="same-origin">
        <title>{{title}} · Berth Public Gallery</title>
        <link rel="stylesheet" href="/gallery/static/gallery.css">
        <script src="/gallery/static/gallery.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <a class="brand" href="/gallery/">Berth <span>Public Gallery</span></a>
        <form class="search" role="search" action="/gallery/search" method="get">
        <label for="q" class="sr-only">Search public repositories</label>
        <input id="q" type="search" name="q" value="{{queryText}}" placeholder="Search public repositories" maxlength="256">
        <button type="submit">Search</button>
        </form>
        </header>
        <main id="main">

        """

    static let foot = """
        </main>
        <footer class="bottom"><p>Served by Berth. Images are pulled anonymously from <code>{{host}}/public/…</code></p></footer>
        </body>
        </html>

        """

    static let card = """
        <li class="card">
        <a class="card-link" href="{{href}}">{{#logo}}<img src="{{logo}}" alt="" width="48" height="48">{{/logo}}{{^logo}}<span class="ph" aria-hidden="true">{{initial}}</span>{{/logo}}<span class="card-name">{{name}}</span></a>
        <p class="card-registry">{{registry}}</p>
        {{#description}}<p class="card-desc">{{description}}</p>{{/description}}
        {{#hasPlatforms}}<ul class="badges" aria-label="Platforms">{{#platforms}}<li>{{.}}</li>{{/platforms}}</ul>{{/hasPlatforms}}
        <p class="meta">{{meta}}</p>
        </li>

        """

    static let filters = """
        <form class="filters" action="{{action}}" method="get" aria-label="Filters">
        {{#hasQuery}}<input type="hidden" name="q" value="{{queryText}}">{{/hasQuery}}
        <label>Architecture <select name="arch"><option value="">Any</option>{{#architectures}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/architectures}}</select></label>
        <label>Operating system <select name="os"><option value="">Any</option>{{#operatingSystems}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/operatingSystems}}</select></label>
        <button type="submit">Apply filters</button>
        </form>

        """

    static let pager = """
        {{#pager}}<nav class="pager" aria-label="Pages">{{#previous}}<a rel="prev" href="{{previous}}">← Previous</a>{{/previous}}<span>Page {{page}} of {{pages}}</span>{{#next}}<a rel="next" href="{{next}}">Next →</a>{{/next}}</nav>{{/pager}}

        """

    /// `/gallery/`, `/gallery/search` and `/gallery/<alias>/`: a heading, filters, sections of cards.
    static let list = """
        {{> head}}
        <h1>{{heading}}</h1>
        {{#intro}}<p class="intro">{{intro}}</p>{{/intro}}
        {{> filters}}
        {{#sections}}
        <section aria-labelledby="{{id}}">
        <h2 id="{{id}}">{{title}}</h2>
        {{#empty}}<p class="empty">{{empty}}</p>{{/empty}}
        {{#hasCards}}<ul class="cards">
        {{#cards}}{{> card}}{{/cards}}
        </ul>{{/hasCards}}
        {{> pager}}
        </section>
        {{/sections}}
        {{> foot}}
        """

    static let repository = """
        {{> head}}
        <nav aria-label="Breadcrumb"><ol class="crumbs"><li><a href="/gallery/">Gallery</a></li><li><a href="{{registryHref}}">{{registry}}</a></li><li aria-current="page">{{name}}</li></ol></nav>
        <article class="repo">
        <header class="repo-head">
        {{#logo}}<img class="logo" src="{{logo}}" alt="{{name}} logo" width="96" height="96">{{/logo}}{{^logo}}<span class="ph big" aria-hidden="true">{{initial}}</span>{{/logo}}
        <div>
        <h1>{{name}}</h1>
        {{#description}}<p class="desc">{{description}}</p>{{/description}}
        {{#hasPlatforms}}<ul class="badges" aria-label="Platforms">{{#platforms}}<li>{{.}}</li>{{/platforms}}</ul>{{/hasPlatforms}}
        <p class="meta">{{meta}}</p>
        </div>
        </header>
        <section class="pull" aria-labelledby="pull-h">
        <h2 id="pull-h">Pull {{#pullTag}}<code>{{pullTag}}</code>{{/pullTag}}</h2>
        {{#hasPullCommands}}{{#pullCommands}}<div class="cmd"><label for="cmd-{{tool}}">{{tool}}</label><input id="cmd-{{tool}}" readonly value="{{command}}" spellcheck="false"><button type="button" class="copy" data-copy="cmd-{{tool}}" hidden>Copy</button></div>
        {{/pullCommands}}{{/hasPullCommands}}{{^hasPullCommands}}<p class="empty">No tagged image has been pushed yet.</p>{{/hasPullCommands}}
        </section>
        <div class="texts">
        <section class="md" aria-labelledby="about-h"><h2 id="about-h">About</h2>{{#aboutHTML}}{{{aboutHTML}}}{{/aboutHTML}}{{^aboutHTML}}<p class="empty">No about text.</p>{{/aboutHTML}}</section>
        <section class="md" aria-labelledby="usage-h"><h2 id="usage-h">Usage</h2>{{#usageHTML}}{{{usageHTML}}}{{/usageHTML}}{{^usageHTML}}<p class="empty">No usage text.</p>{{/usageHTML}}</section>
        </div>
        <section aria-labelledby="tags-h">
        <h2 id="tags-h">Image tags <span class="count">({{tagCount}})</span></h2>
        {{#hasTags}}<div class="table-wrap" role="region" aria-labelledby="tags-h" tabindex="0"><table class="tags">
        <thead><tr><th scope="col">Tag</th><th scope="col">Pushed</th><th scope="col">Size</th><th scope="col">Platforms</th><th scope="col">Digest</th><th scope="col">Downloads</th><th scope="col">Vulnerabilities</th></tr></thead>
        <tbody>
        {{#tags}}<tr><th scope="row">{{tag}}</th><td><time datetime="{{pushedISO}}">{{pushed}}</time></td><td>{{size}}</td><td>{{platforms}}</td><td><code title="{{digest}}">{{shortDigest}}</code></td><td class="num">{{downloads}}</td><td>{{scan}}</td></tr>
        {{/tags}}</tbody></table></div>{{/hasTags}}{{^hasTags}}<p class="empty">No tags.</p>{{/hasTags}}
        {{> pager}}
        </section>
        </article>
        {{> foot}}
        """

    static let notFound = """
        {{> head}}
        <h1>Not found</h1>
        <p>There is no public repository or page here. <a href="/gallery/">Back to the gallery</a>.</p>
        {{> foot}}
        """

    static let stylesheet = """
        :root{--fg:#16191f;--muted:#545b64;--bg:#fff;--soft:#f2f3f3;--line:#d5dbdb;--accent:#0972d3;--head:#232f3e}
        *{box-sizing:border-box}
        body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
        a{color:var(--accent)}
        a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,[tabindex]:focus-visible{outline:3px solid #ff9900;outline-offset:2px}
        .skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:8px;z-index:2}
        .sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        .top{display:flex;flex-wrap:wrap;gap:12px;align-items:center;justify-content:space-between;background:var(--head);color:#fff;padding:12px 24px}
        .brand{color:#fff;text-decoration:none;font-weight:700;font-size:1.2rem}.brand span{font-weight:400;color:#d1d5db}
        .search{display:flex;flex:1 1 320px;max-width:560px}
        .search input{flex:1;padding:8px 12px;border:1px solid var(--line);border-radius:4px 0 0 4px;font:inherit}
        button{font:inherit;cursor:pointer;border:1px solid var(--accent);background:var(--accent);color:#fff;padding:8px 14px;border-radius:4px}
        .search button{border-radius:0 4px 4px 0}
        main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
        h1{font-size:1.75rem;margin:16px 0 8px}h2{font-size:1.25rem;margin:24px 0 12px}
        .intro,.meta,.card-registry,.empty,.count{color:var(--muted)}
        .filters{display:flex;flex-wrap:wrap;gap:12px;align-items:end;margin:8px 0 16px}
        .filters label{display:flex;flex-direction:column;font-size:.875rem;color:var(--muted)}
        .filters select{font:inherit;padding:6px;border:1px solid var(--line);border-radius:4px;min-width:160px}
        .cards{list-style:none;margin:0;padding:0;display:grid;gap:16px;grid-template-columns:repeat(auto-fill,minmax(260px,1fr))}
        .card{border:1px solid var(--line);border-radius:8px;padding:16px;display:flex;flex-direction:column;gap:4px;min-width:0}
        .card p{margin:0}.card-desc{overflow-wrap:anywhere;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
        .card-link{display:flex;align-items:center;gap:12px;font-weight:600;text-decoration:none;overflow-wrap:anywhere}
        .card-link:hover .card-name{text-decoration:underline}
        .card img,.logo{object-fit:contain;border-radius:6px;background:var(--soft)}
        .ph{display:inline-flex;align-items:center;justify-content:center;width:48px;height:48px;flex:none;border-radius:6px;background:var(--soft);color:var(--muted);font-weight:700;text-transform:uppercase}
        .ph.big{width:96px;height:96px;font-size:2rem}
        .badges{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:6px}
        .badges li{overflow-wrap:anywhere;max-width:100%;font-size:.75rem;background:var(--soft);border:1px solid var(--line);border-radius:12px;padding:0 8px}
        .crumbs{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:6px;font-size:.875rem}
        .crumbs li+li::before{content:"/";margin-right:6px;color:var(--muted)}
        .repo-head{display:flex;gap:20px;align-items:flex-start}.repo-head h1{margin-top:0;overflow-wrap:anywhere}
        .desc{font-size:1.1rem;overflow-wrap:anywhere}
        .pull{background:var(--soft);border-radius:8px;padding:4px 16px 16px;margin-top:16px}
        .cmd{display:grid;grid-template-columns:80px 1fr auto;gap:8px;align-items:center;margin:6px 0}
        .cmd input{font:14px ui-monospace,SFMono-Regular,Menlo,monospace;padding:6px 8px;border:1px solid var(--line);border-radius:4px;width:100%;min-width:0}
        .texts{display:grid;gap:24px;grid-template-columns:repeat(auto-fit,minmax(320px,1fr))}
        .md{overflow-wrap:anywhere;min-width:0}.md pre{background:var(--soft);padding:12px;overflow:auto;border-radius:6px}
        .md img{max-width:100%}.md table{border-collapse:collapse}.md td,.md th{border:1px solid var(--line);padding:4px 8px}
        .table-wrap{overflow-x:auto}
        table.tags{border-collapse:collapse;width:100%;font-size:.9rem}
        .tags th,.tags td{text-align:left;padding:8px;border-bottom:1px solid var(--line);vertical-align:top}
        .tags tbody th{overflow-wrap:anywhere}
        .tags td.num{text-align:right;font-variant-numeric:tabular-nums}
        .pager{display:flex;gap:16px;align-items:center;margin:16px 0}
        .bottom{border-top:1px solid var(--line);color:var(--muted);padding:16px 24px;font-size:.875rem;text-align:center}
        @media (max-width:600px){.top{padding:12px}main{padding:12px}.repo-head{flex-direction:column}.cmd{grid-template-columns:1fr}}

        """

    /// Progressive: shows the copy buttons (hidden without JavaScript, where the commands are selectable).
    static let script = """
        document.querySelectorAll("button.copy").forEach(function (b) {
          if (!navigator.clipboard) return;
          b.hidden = false;
          b.addEventListener("click", function () {
            var input = document.getElementById(b.getAttribute("data-copy"));
            navigator.clipboard.writeText(input.value).then(function () { b.textContent = "Copied"; });
          });
        });

        """
}
