//! Tokens validated by a real Keystone (started by `scripts/services/start-keystone.sh`): the
//! service user's own token, project-scoped users' tokens, an expired and a forged token, the
//! owner and admin role taken from Keystone's answer, and no credential in any log line.

use crate::support::service_vars;
use crate::support::services::KEYSTONE_SERVICE_VARS;
use crate::support::{id_of, ApiClient, ImageServer, Payload, Shape};

/// Keystone's variables, or `None` (a loud skip) without the test server.
pub(super) struct Keystone {
    url: String,
    /// The image service's own user, password and project.
    service: (String, String, String),
    demo_project_id: String,
    /// Users as (name, password, project name).
    admin: (String, String, String),
    member: (String, String, String),
    other: (String, String, String),
    expired_token: String,
}

pub(super) fn keystone() -> Option<Keystone> {
    let v = service_vars(
        "Keystone",
        "start-keystone.sh",
        &[
            &KEYSTONE_SERVICE_VARS[..],
            &[
                "KEYSTONE_DEMO_PROJECT",
                "KEYSTONE_DEMO_PROJECT_ID",
                "KEYSTONE_ALT_PROJECT",
                "KEYSTONE_DEMO_ADMIN_USER",
                "KEYSTONE_DEMO_ADMIN_PASSWORD",
                "KEYSTONE_DEMO_MEMBER_USER",
                "KEYSTONE_DEMO_MEMBER_PASSWORD",
                "KEYSTONE_ALT_MEMBER_USER",
                "KEYSTONE_ALT_MEMBER_PASSWORD",
                "KEYSTONE_EXPIRED_TOKEN",
            ],
        ]
        .concat(),
    )?;
    let user =
        |name: usize, project: usize| (v[name].clone(), v[name + 1].clone(), v[project].clone());
    Some(Keystone {
        url: v[0].trim_end_matches('/').to_string(),
        service: (v[1].clone(), v[2].clone(), v[3].clone()),
        demo_project_id: v[5].clone(),
        admin: user(7, 4),
        member: user(9, 4),
        other: user(11, 6),
        expired_token: v[13].clone(),
    })
}

impl Keystone {
    /// `http://host:port` and the `/v3` path of the identity endpoint.
    fn split(&self) -> (std::net::SocketAddr, String) {
        let rest = self
            .url
            .strip_prefix("http://")
            .expect("an http Keystone URL");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = format!("/{path}");
        let path = if path.ends_with("/v3") {
            path
        } else {
            format!("{}/v3", path.trim_end_matches('/'))
        };
        (host.parse().expect("KEYSTONE_URL host:port"), path)
    }

    /// A project-scoped token for a user (name, password, project).
    fn token(&self, (user, password, project): &(String, String, String)) -> String {
        let (addr, v3) = self.split();
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}},
        }});
        let reply = ApiClient::new(addr).request(
            "POST",
            &format!("{v3}/auth/tokens"),
            &[("content-type", "application/json")],
            Payload::Sized(serde_json::to_vec(&body).unwrap().into()),
        );
        assert_eq!(
            reply.status,
            201,
            "Keystone refused {user}: {}",
            reply.text()
        );
        reply.header("x-subject-token").unwrap().to_string()
    }

    /// The settings of a glint that validates tokens with this Keystone.
    pub(super) fn service_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GLINT_FLAVOR", "keystone".into()),
            ("GLINT_KEYSTONE_AUTHTOKEN_AUTH_URL", self.url.clone()),
            ("GLINT_KEYSTONE_AUTHTOKEN_USERNAME", self.service.0.clone()),
            ("GLINT_KEYSTONE_AUTHTOKEN_PASSWORD", self.service.1.clone()),
            (
                "GLINT_KEYSTONE_AUTHTOKEN_PROJECT_NAME",
                self.service.2.clone(),
            ),
        ]
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.service_env();
        env.push(("GLINT_REGISTRY_TRUSTED_CLIENTS", "127.0.0.1".into()));
        env.push(("GLINT_DEBUG", "true".into()));
        env
    }
}

fn head(srv: &ImageServer, token: &str, id: &str) -> u16 {
    let path = format!("/v1/images/{id}");
    srv.request("HEAD", &path, &[("x-auth-token", token)], Payload::Empty)
        .status
        .as_u16()
}

#[test]
fn keystone_tokens_decide_owner_visibility_and_admin_rights() {
    let Some(ks) = keystone() else { return };
    for shape in [Shape::Serve, Shape::Split] {
        let env = ks.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let srv = ImageServer::start(shape, &env);
        let member = ks.token(&ks.member);
        let other = ks.token(&ks.other);
        let admin = ks.token(&ks.admin);

        let create = |token: &str, public: &str| {
            let headers = [
                ("x-auth-token", token),
                ("x-image-meta-name", "ks"),
                ("x-image-meta-is_public", public),
            ];
            srv.request("POST", "/v1/images", &headers, Payload::Empty)
        };
        let private = create(&member, "False").json(201)["image"].clone();
        assert_eq!(
            private["owner"],
            ks.demo_project_id.as_str(),
            "owner = token's project"
        );
        let id = id_of(&private);
        assert_eq!(head(&srv, &member, &id), 200);
        assert_eq!(
            head(&srv, &other, &id),
            404,
            "another project does not see it"
        );
        assert_eq!(head(&srv, &admin, &id), 200);
        create(&member, "True").assert_error(403, "publicize_image");
        let public = create(&admin, "True").json(201)["image"].clone();
        assert_eq!(head(&srv, &other, &id_of(&public)), 200);
        let v2 = srv.request(
            "GET",
            "/v2/images",
            &[("x-auth-token", &other)],
            Payload::Empty,
        );
        let listed: Vec<String> = v2.json(200)["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            listed.contains(&id_of(&public)) && !listed.contains(&id),
            "{listed:?}"
        );

        // Expired, forged and missing tokens: 401 naming Keystone.
        for token in [ks.expired_token.as_str(), "forged"] {
            let reply = srv.request(
                "GET",
                "/v1/images",
                &[("x-auth-token", token)],
                Payload::Empty,
            );
            reply.assert_error(401, "invalid or has expired");
            let scheme = reply.header("www-authenticate").unwrap_or_default();
            assert!(scheme.starts_with("Keystone uri="), "{scheme}");
        }
        // Neither the callers' tokens nor the service password reach a log line.
        let logs = srv.logs();
        for secret in [&member, &other, &admin, &ks.expired_token, &ks.service.1] {
            assert!(
                !logs.contains(secret.as_str()),
                "a credential in the logs:\n{logs}"
            );
        }
    }
}
