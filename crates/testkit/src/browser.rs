//! [`Browser`]: a user agent with a cookie jar and no automatic redirects, that goes through
//! the authorization pages as a person would (RFC 6749 §4.1.1–4.1.2): `GET /authorize`, the
//! login form, the consent form, the redirect back with a code. Each form is posted with the
//! hidden fields (`request`, `csrf`) of the page it was on, as the pages' forms post them.

use url::Url;

/// A user agent with its own cookie jar.
#[derive(Clone)]
pub struct Browser {
    /// The client (cookie jar, no automatic redirects).
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// An HTML page as the browser received it.
#[derive(Debug, Clone)]
pub struct Page {
    /// Where it came from (the forms post to its server).
    pub url: Url,
    /// Its status.
    pub status: u16,
    /// Its HTML.
    pub html: String,
}

impl Page {
    /// Reads a response as a page.
    pub async fn read(resp: reqwest::Response) -> Page {
        Page {
            url: resp.url().clone(),
            status: resp.status().as_u16(),
            html: resp.text().await.unwrap(),
        }
    }

    /// The value of the hidden form field `name`.
    pub fn field(&self, name: &str) -> String {
        field(&self.html, name)
    }

    /// Whether the page asks for a password (the login page).
    pub fn is_login(&self) -> bool {
        self.html.contains("name=\"password\"")
    }
}

/// The value of a hidden form field.
pub fn field(html: &str, name: &str) -> String {
    try_field(html, name).unwrap_or_else(|| panic!("no {name} field in: {html}"))
}

/// The value of a hidden form field, if the page has it.
pub fn try_field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    html[start..].split('"').next().map(str::to_owned)
}

impl Browser {
    /// A fresh browser.
    pub fn new() -> Browser {
        let http = Self::builder().build().unwrap();
        Browser { http }
    }

    /// A browser whose connections come from `addr` (a loopback address).
    pub fn from_address(addr: std::net::IpAddr) -> Browser {
        let http = Self::builder().local_address(addr).build().unwrap();
        Browser { http }
    }

    fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) -> Page {
        Page::read(self.http.get(url).send().await.unwrap()).await
    }

    /// Posts `page`'s hidden fields and `fields` to `path` on the page's server.
    pub async fn submit(
        &self,
        page: &Page,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("request".to_owned(), page.field("request")),
            ("csrf".to_owned(), page.field("csrf")),
        ];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.http
            .post(page.url.join(path).unwrap())
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Posts the login form of `page` (`/authorize/login`) with `username` and `password`.
    pub async fn log_in(&self, page: &Page, username: &str, password: &str) -> reqwest::Response {
        let credentials = [("username", username), ("password", password)];
        self.submit(page, "/authorize/login", &credentials).await
    }

    /// Opens `authorize_url` and, on the login page, signs in: the page that follows (the
    /// consent page, or what the login was answered with). Already signed in, the consent
    /// page straight away.
    pub async fn sign_in(&self, authorize_url: &str, username: &str, password: &str) -> Page {
        let page = self.open(authorize_url).await;
        assert_eq!(page.status, 200, "login page");
        if !page.is_login() {
            return page;
        }
        Page::read(self.log_in(&page, username, password).await).await
    }

    /// Posts the consent form of `page` (`/authorize/consent`) with `decision` (`approve` or
    /// `deny`).
    pub async fn decide(&self, page: &Page, decision: &str) -> reqwest::Response {
        self.submit(page, "/authorize/consent", &[("decision", decision)])
            .await
    }

    /// Signs in through `/signin` on the server at `base` (the console's, the portal's and
    /// the account page's sign-in), asking to go to `next` afterwards: the answer (a 303 on
    /// success) and the CSRF token the pages' forms repeat.
    pub async fn sign_in_page(
        &self,
        base: &str,
        next: &str,
        username: &str,
        password: &str,
    ) -> (reqwest::Response, String) {
        let page = self.open(&format!("{base}/signin?next={next}")).await;
        assert_eq!(page.status, 200, "the sign-in page: {}", page.html);
        let csrf = page.field("csrf");
        let resp = self
            .http
            .post(format!("{base}/signin"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("next", next),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        (resp, csrf)
    }

    /// Signs in at `authorize_url` and approves: the code on the redirect. A user who
    /// approved this application before is sent straight back (the consent is remembered),
    /// from `/authorize` when already signed in or from the login form.
    pub async fn code(&self, authorize_url: &str, username: &str, password: &str) -> String {
        let resp = self.http.get(authorize_url).send().await.unwrap();
        let resp = if resp.status() == 303 {
            resp
        } else {
            let page = Page::read(resp).await;
            assert_eq!(page.status, 200, "login or consent page: {}", page.html);
            let next = if page.is_login() {
                self.log_in(&page, username, password).await
            } else {
                self.decide(&page, "approve").await
            };
            if next.status() == 303 {
                next
            } else {
                let consent = Page::read(next).await;
                assert_eq!(consent.status, 200, "consent page: {}", consent.html);
                self.decide(&consent, "approve").await
            }
        };
        assert_eq!(resp.status(), 303);
        let (_, params) = location_params(&resp);
        param(&params, "code").expect("a code").to_owned()
    }
}

/// Signs `username` in with a fresh browser at `authorize_url` and approves: the code.
pub async fn sign_in(authorize_url: &str, username: &str, password: &str) -> String {
    Browser::new().code(authorize_url, username, password).await
}

/// The query parameters of a redirect response's Location, and the URL before them.
pub fn location_params(resp: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let loc = resp
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location: {}", resp.status()));
    let url = Url::parse(loc.to_str().unwrap()).unwrap();
    let base = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap(),
        url.path()
    );
    (
        base,
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

/// The first value of `name` in `params`.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An authorization request URL at `base` for `client_id` with `state=xyz` and `extra`
/// parameters (RFC 6749 §4.1.1).
pub fn authorize_url(base: &str, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("state", "xyz"),
    ];
    pairs.extend_from_slice(extra);
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{base}/authorize?{q}")
}

/// HTML text as a reader sees it (and copies it): every character reference decoded.
pub fn html_text(html: &str) -> String {
    html_escape::decode_html_entities(html).into_owned()
}
