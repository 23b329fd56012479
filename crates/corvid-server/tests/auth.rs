//! Client-certificate authentication over real TLS: RavenDB's 403 `InvalidAuth` for a missing or
//! unknown certificate, the certificate routes, and each clearance and database permission
//! against one route of each kind.

mod secure;

use base64::Engine as _;
use secure::{Issued, SecureServer};
use serde_json::{Value, json};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// Registers `issued` through `PUT /admin/certificates` as the admin.
async fn register(server: &SecureServer, issued: &Issued, clearance: &str, permissions: Value) {
    let body = json!({
        "Name": format!("{clearance} {permissions}"),
        "Certificate": base64::engine::general_purpose::STANDARD.encode(&issued.der),
        "SecurityClearance": clearance,
        "Permissions": permissions,
    });
    let (status, reply) = server
        .request(
            Some(&server.admin),
            "PUT",
            "/admin/certificates",
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
}

#[tokio::test]
async fn a_missing_or_unknown_certificate_gets_ravendbs_invalid_auth() {
    let server = SecureServer::start().await;
    let (status, body) = server.request(None, "GET", "/build/version", None).await;
    assert_eq!(status, 200, "/build/version needs no certificate: {body}");
    // The Studio's files hold no data: a browser without a certificate gets the page, and
    // what the page then asks for is refused like any other request.
    let (status, body) = server
        .request(None, "GET", "/studio/index.html", None)
        .await;
    assert_eq!(status, 200, "the Studio needs no certificate: {body}");
    assert!(body.contains("Corvid Studio"), "{body}");

    let (status, body) = server
        .request(None, "GET", "/databases/db/stats", None)
        .await;
    assert_eq!(status, 403);
    let body = json(&body);
    assert_eq!(body["Type"], "InvalidAuth");
    assert_eq!(
        body["Message"],
        "This server requires client certificate for authentication, but none was provided by the client."
    );

    let stranger = server.authority.issue("stranger");
    let (status, body) = server
        .request(Some(&stranger), "GET", "/databases/db/stats", None)
        .await;
    assert_eq!(status, 403);
    let message = json(&body)["Message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("is unknown to the server"), "{message}");
    assert!(message.contains("(Thumbprint: "), "{message}");
}

#[tokio::test]
async fn each_clearance_and_permission_against_a_route_of_each_kind() {
    let server = SecureServer::start().await;
    let reader = server.authority.issue("reader");
    let writer = server.authority.issue("writer");
    let db_admin = server.authority.issue("db-admin");
    let operator = server.authority.issue("operator");
    register(&server, &reader, "ValidUser", json!({"db": "Read"})).await;
    register(&server, &writer, "ValidUser", json!({"db": "ReadWrite"})).await;
    register(&server, &db_admin, "ValidUser", json!({"DB": "Admin"})).await;
    register(&server, &operator, "Operator", json!({})).await;

    let doc = r#"{"Name":"a"}"#;
    // (method, path, body, status when allowed)
    let routes: [(&str, &str, Option<&str>, u16); 6] = [
        ("GET", "/databases/db/stats", None, 200),
        ("PUT", "/databases/db/docs?id=users/1", Some(doc), 201),
        // A GET that writes (it reserves a range of ids): a write.
        (
            "GET",
            "/databases/db/hilo/next?tag=users&lastBatchSize=0&lastRangeAt=0001-01-01T00:00:00.0000000&identityPartsSeparator=/&lastMax=0",
            None,
            201,
        ),
        ("GET", "/databases/db/admin/connection-strings", None, 200),
        ("GET", "/admin/databases?name=db", None, 200),
        ("GET", "/admin/certificates", None, 200),
    ];
    let cases: [(&str, &Issued, [bool; 6]); 5] = [
        ("reader", &reader, [true, false, false, false, false, false]),
        ("writer", &writer, [true, true, true, false, false, false]),
        (
            "db admin",
            &db_admin,
            [true, true, true, true, false, false],
        ),
        ("operator", &operator, [true, true, true, true, true, true]),
        (
            "cluster admin",
            &server.admin,
            [true, true, true, true, true, true],
        ),
    ];
    for (who, certificate, allowed) in cases {
        for ((method, path, body, ok), allowed) in routes.iter().zip(allowed) {
            let (status, reply) = server.request(Some(certificate), method, path, *body).await;
            if allowed {
                assert_eq!(status, *ok, "{who} {method} {path}: {reply}");
            } else {
                assert_eq!(status, 403, "{who} {method} {path}: {reply}");
                assert_eq!(json(&reply)["Type"], "InvalidAuth", "{reply}");
            }
        }
    }
    // Only a ClusterAdmin registers certificates.
    let other = server.authority.issue("other");
    let body = json!({
        "Name": "other",
        "Certificate": base64::engine::general_purpose::STANDARD.encode(&other.der),
        "SecurityClearance": "ClusterAdmin",
    })
    .to_string();
    let (status, reply) = server
        .request(Some(&operator), "PUT", "/admin/certificates", Some(&body))
        .await;
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("ClusterAdmin access is required"), "{reply}");
    // A reader's multi_get cannot smuggle a write.
    let smuggled = json!({"Requests": [{"Url": "/databases/db/docs", "Query": "?id=users/2", "Method": "PUT", "Content": doc}]});
    let (status, reply) = server
        .request(
            Some(&reader),
            "POST",
            "/databases/db/multi_get",
            Some(&smuggled.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("InvalidAuth"), "{reply}");
}

#[tokio::test]
async fn certificates_are_listed_shown_to_their_owner_and_deleted() {
    let server = SecureServer::start().await;
    let reader = server.authority.issue("reader");
    register(&server, &reader, "ValidUser", json!({"db": "Read"})).await;

    let (status, body) = server
        .request(Some(&server.admin), "GET", "/admin/certificates", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let results = json(&body)["Results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mine = results
        .iter()
        .find(|it| it["Permissions"]["db"] == "Read")
        .expect("the reader's definition");
    let thumbprint = mine["Thumbprint"].as_str().expect("thumbprint").to_owned();
    assert_eq!(thumbprint.len(), 40);
    assert_eq!(thumbprint, thumbprint.to_uppercase());
    assert_eq!(mine["SecurityClearance"], "ValidUser");
    assert_eq!(
        mine["Certificate"],
        base64::engine::general_purpose::STANDARD.encode(&reader.der)
    );
    assert!(
        mine["NotAfter"]
            .as_str()
            .is_some_and(|it| it.ends_with('Z')),
        "{mine}"
    );

    let (status, body) = server
        .request(Some(&reader), "GET", "/certificates/whoami", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["Thumbprint"], thumbprint.as_str());

    let (status, body) = server
        .request(
            Some(&server.admin),
            "DELETE",
            &format!("/admin/certificates?thumbprint={thumbprint}"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server
        .request(Some(&reader), "GET", "/databases/db/stats", None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is unknown to the server"), "{body}");
}
