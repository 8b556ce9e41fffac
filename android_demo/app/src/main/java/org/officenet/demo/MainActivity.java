package org.officenet.demo;

import android.app.Activity;
import android.content.ActivityNotFoundException;
import android.content.Intent;
import android.content.pm.PackageManager;
import android.net.Uri;
import android.graphics.Insets;
import android.os.Build;
import android.os.Bundle;
import android.view.View;
import android.view.WindowInsets;
import android.view.WindowManager;
import android.webkit.PermissionRequest;
import android.webkit.RenderProcessGoneDetail;
import android.webkit.ValueCallback;
import android.webkit.WebChromeClient;
import android.webkit.WebResourceRequest;
import android.webkit.WebResourceResponse;
import android.webkit.WebSettings;
import android.webkit.WebView;
import android.webkit.WebViewClient;
import android.widget.FrameLayout;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;

/**
 * The whole app: a full-screen WebView showing the camera page from the APK's assets.
 *
 * The page (assets/web/index.html) owns the camera, the model (LiteRT.js, WebAssembly) and the
 * UI; this activity only gives it what a browser tab would have: a secure origin
 * (https://appassets.androidplatform.net/, answered from the assets, so getUserMedia and
 * WebAssembly work offline), the camera (Android permission, then the page's video-capture
 * request), a file picker for the still-photo mode, and a screen that stays on.
 * Framework APIs only (minSdk 24), no AndroidX: the build here has no Maven.
 *
 * What a phone does to it: targetSdk 35 draws the app edge to edge on Android 15, so the WebView's
 * container is padded by the system bars and display cutout; a killed or crashed renderer would
 * take the whole app down unless onRenderProcessGone starts a fresh WebView; rotation and other
 * configuration changes are declared in the manifest (configChanges) so they resize the page
 * instead of reloading it. Every asset goes out with the cross-origin isolation headers, which
 * let the page use LiteRT.js's threaded build where the WebView honours them.
 */
public class MainActivity extends Activity {
    static final String HOST = "appassets.androidplatform.net";
    static final String START_URL = "https://" + HOST + "/index.html";
    /** The page's files live under this assets folder; URL paths map onto it one to one. */
    static final String ASSET_ROOT = "web";
    static final int CAMERA_REQUEST = 1;
    static final int PICK_PHOTO_REQUEST = 2;
    /** The page's background (style.css), also behind the system bars. */
    static final int BACKGROUND = 0xff111111;

    private FrameLayout root;
    private WebView webView;
    private boolean cameraAsked;
    private ValueCallback<Uri[]> pendingPhotoPick;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        getWindow().addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON);
        root = new FrameLayout(this);
        root.setBackgroundColor(BACKGROUND);
        root.setOnApplyWindowInsetsListener(new View.OnApplyWindowInsetsListener() {
            @Override
            public WindowInsets onApplyWindowInsets(View view, WindowInsets insets) {
                int[] bars = barInsets(insets);
                view.setPadding(bars[0], bars[1], bars[2], bars[3]);
                return insets;
            }
        });
        setContentView(root);
        newWebView();
        if (checkSelfPermission("android.permission.CAMERA") == PackageManager.PERMISSION_GRANTED) {
            cameraAsked = true;
            webView.loadUrl(START_URL);
        } else {
            requestPermissions(new String[] {"android.permission.CAMERA"}, CAMERA_REQUEST);
        }
    }

    /** Left, top, right, bottom: what the status and navigation bars and a cutout cover. */
    static int[] barInsets(WindowInsets insets) {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
            Insets i = insets.getInsets(WindowInsets.Type.systemBars() | WindowInsets.Type.displayCutout());
            return new int[] {i.left, i.top, i.right, i.bottom};
        }
        return new int[] {insets.getSystemWindowInsetLeft(), insets.getSystemWindowInsetTop(),
                          insets.getSystemWindowInsetRight(), insets.getSystemWindowInsetBottom()};
    }

    private void newWebView() {
        webView = new WebView(this);
        webView.setBackgroundColor(BACKGROUND);
        WebSettings settings = webView.getSettings();
        settings.setJavaScriptEnabled(true);
        settings.setDomStorageEnabled(true);            // the server URL is kept in localStorage
        settings.setMediaPlaybackRequiresUserGesture(false);
        settings.setAllowFileAccess(false);             // assets come through shouldInterceptRequest
        // The page is https, the fallback server plain http on the local network.
        settings.setMixedContentMode(WebSettings.MIXED_CONTENT_ALWAYS_ALLOW);
        webView.setWebViewClient(new AssetClient());
        webView.setWebChromeClient(new PageChrome());
        root.addView(webView);
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] grantResults) {
        // Load the page either way: without the camera it still offers the still-photo mode.
        if (requestCode == CAMERA_REQUEST) {
            cameraAsked = true;
            webView.loadUrl(START_URL);
        }
    }

    @Override
    protected void onActivityResult(int requestCode, int resultCode, Intent data) {
        if (requestCode == PICK_PHOTO_REQUEST && pendingPhotoPick != null) {
            pendingPhotoPick.onReceiveValue(WebChromeClient.FileChooserParams.parseResult(resultCode, data));
            pendingPhotoPick = null;
        }
    }

    @Override
    protected void onPause() {
        super.onPause();
        webView.onPause();  // stops the camera stream and timers while in the background
    }

    @Override
    protected void onResume() {
        super.onResume();
        webView.onResume();
    }

    @Override
    protected void onDestroy() {
        webView.destroy();
        super.onDestroy();
    }

    /** Answers https://appassets.androidplatform.net/PATH from assets/web/PATH; other hosts go to the network. */
    class AssetClient extends WebViewClient {
        /**
         * The renderer was killed for memory or crashed (API 26+; older WebViews end the app):
         * returning false would end this app too. Drop the dead WebView and load the page again in a
         * fresh one; its settings survive in localStorage.
         */
        @Override
        public boolean onRenderProcessGone(WebView view, RenderProcessGoneDetail detail) {
            if (view == webView) {
                root.removeView(webView);
                webView.destroy();
                newWebView();
                if (cameraAsked) {
                    webView.loadUrl(START_URL);
                }
            } else {
                view.destroy();
            }
            return true;
        }

        @Override
        public WebResourceResponse shouldInterceptRequest(WebView view, WebResourceRequest request) {
            Uri url = request.getUrl();
            if (!HOST.equals(url.getHost())) {
                return null;
            }
            String path = url.getPath();
            if (path == null || path.equals("/") || path.isEmpty()) {
                path = "/index.html";
            }
            if (path.contains("..")) {
                return null;
            }
            try {
                InputStream data = getAssets().open(ASSET_ROOT + path);
                String type = mimeType(path);
                return new WebResourceResponse(type, type.startsWith("text/") ? "utf-8" : null, 200, "OK",
                                               headers(), data);
            } catch (IOException e) {
                return null;  // the WebView reports a network error, the page shows it
            }
        }
    }

    /** Gives the page the camera it asks for and a photo picker for <input type="file">. */
    class PageChrome extends WebChromeClient {
        @Override
        public void onPermissionRequest(PermissionRequest request) {
            // Only our own page, and only the camera: anything else (microphone, ...) is refused.
            String[] wanted = request.getResources();
            boolean cameraOnly = HOST.equals(request.getOrigin().getHost()) && wanted.length > 0;
            for (String resource : wanted) {
                cameraOnly &= PermissionRequest.RESOURCE_VIDEO_CAPTURE.equals(resource);
            }
            if (cameraOnly) {
                request.grant(wanted);
            } else {
                request.deny();
            }
        }

        @Override
        public boolean onShowFileChooser(WebView view, ValueCallback<Uri[]> callback,
                                         FileChooserParams params) {
            if (pendingPhotoPick != null) {
                pendingPhotoPick.onReceiveValue(null);
            }
            pendingPhotoPick = callback;
            try {
                startActivityForResult(params.createIntent(), PICK_PHOTO_REQUEST);
            } catch (ActivityNotFoundException e) {
                pendingPhotoPick = null;
                return false;
            }
            return true;
        }
    }

    /**
     * Cross-origin isolation (what android_demo/page.py's ISOLATION_HEADERS serve in the tests):
     * SharedArrayBuffer, and so LiteRT.js's threaded build, needs it. Nothing the page loads comes
     * from another origin except the fallback server's CORS answers, which COEP lets through.
     */
    static Map<String, String> headers() {
        Map<String, String> headers = new HashMap<String, String>();
        headers.put("Cross-Origin-Opener-Policy", "same-origin");
        headers.put("Cross-Origin-Embedder-Policy", "require-corp");
        return headers;
    }

    /** WebAssembly.instantiateStreaming needs application/wasm; module scripts need a JS type. */
    static String mimeType(String path) {
        if (path.endsWith(".html")) return "text/html";
        if (path.endsWith(".js") || path.endsWith(".mjs")) return "text/javascript";
        if (path.endsWith(".css")) return "text/css";
        if (path.endsWith(".json")) return "application/json";
        if (path.endsWith(".wasm")) return "application/wasm";
        if (path.endsWith(".txt")) return "text/plain";
        return "application/octet-stream";
    }
}
